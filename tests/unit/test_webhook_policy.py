"""The webhook address policy on a table of URLs and addresses: evaluated, never contacted."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import pytest

from domain.errors import InvalidValue
from domain.subscription import check_webhook_url
from workers.webhook_policy import WebhookPolicy, resolve_host

PUBLIC = "93.184.215.14"
NAMES = {"example.org": [PUBLIC], "hooks.example.org": [PUBLIC], "intranet.example": ["10.1.2.3"],
         "rebound.example": [PUBLIC, "127.0.0.1"], "localhost": ["127.0.0.1", "::1"],
         "metadata.google.internal": ["169.254.169.254"]}  # fmt: skip


def fake_resolve(host: str, port: int) -> list[str]:
    return NAMES.get(host.rstrip("."), [])


def policy(**kwargs: Any) -> WebhookPolicy:
    return WebhookPolicy(resolve=fake_resolve, **kwargs)


def refused(url: str, policy: WebhookPolicy) -> str:
    with pytest.raises(InvalidValue) as error:
        policy.admit(url)
    assert error.value.field == "url"
    return error.value.message


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/", "gopher://example.org/", "file:///etc/passwd", "https://u:p@example.org/",
     "https://u@example.org/", "https:///nohost", "http://example.org:99999/", "http://example.org:0/",
     "http://nowhere.invalid/", "http://exa mple.org/", "http://example.org/a\nb",
     "http://[fe80::1%25eth0]/", "http://ex%61mple.org/", "http://例え.jp/", "http://a_b$.org/"],
)  # fmt: skip
def test_urls_that_are_not_plain_http_with_a_resolvable_host_are_refused(url: str) -> None:
    refused(url, policy(allow_loopback=True))


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "127.0.1", "017700000001",
     "0x7f.0x0.0x0.0x1", "1.2.3.4.5", "intranet.0x7f", "93.184.215.014"],
)  # fmt: skip
def test_numeric_hosts_other_than_a_dotted_quad_are_refused_even_with_loopback(host: str) -> None:
    message = refused(f"http://{host}:8080/hook", policy(allow_loopback=True))
    assert "dotted quad" in message
    with pytest.raises(InvalidValue):
        check_webhook_url(f"http://{host}/")  # the domain's syntax check alone refuses it


@pytest.mark.parametrize(
    ("address", "kind"),
    [("10.0.0.1", "private"), ("172.16.5.4", "private"), ("172.31.255.255", "private"),
     ("192.168.1.1", "private"), ("[fd00::1]", "private"), ("[fec0::1]", "private"),
     ("169.254.1.1", "link-local"), ("[fe80::1]", "link-local"), ("127.0.0.1", "loopback"),
     ("127.9.9.9", "loopback"), ("[::1]", "loopback"), ("0.0.0.0", "unspecified"),
     ("0.1.2.3", "unspecified"), ("[::]", "unspecified"), ("224.0.0.1", "multicast"),
     ("[ff02::1]", "multicast"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
     ("192.0.2.1", "reserved"), ("198.18.0.1", "reserved"), ("[2001:db8::1]", "reserved"),
     ("100.64.0.1", "shared (CGNAT)"), ("100.127.255.254", "shared (CGNAT)"),
     ("169.254.169.254", "cloud-metadata"), ("[fd00:ec2::254]", "cloud-metadata"),
     ("100.100.100.200", "cloud-metadata"), ("192.0.0.192", "cloud-metadata"),
     ("169.254.170.2", "cloud-metadata"),
     ("[::ffff:10.0.0.1]", "private (IPv4-mapped 10.0.0.1)"),
     ("[::ffff:127.0.0.1]", "loopback (IPv4-mapped 127.0.0.1)"),
     ("[::ffff:169.254.169.254]", "cloud-metadata (IPv4-mapped 169.254.169.254)"),
     ("[::10.0.0.1]", "private (IPv4-compatible 10.0.0.1)"),
     ("[::127.0.0.1]", "loopback (IPv4-compatible 127.0.0.1)"),
     ("[::93.184.215.14]", "reserved (IPv4-compatible)"),
     ("[2002:7f00:1::1]", "loopback (6to4 127.0.0.1)"),
     ("[2002:a9fe:a9fe::]", "cloud-metadata (6to4 169.254.169.254)"),
     ("[2002:c0a8:101::1]", "private (6to4 192.168.1.1)"),
     ("[64:ff9b::a00:1]", "private (NAT64 10.0.0.1)"),
     ("[64:ff9b::7f00:1]", "loopback (NAT64 127.0.0.1)"),
     ("[64:ff9b::6440:1]", "shared (CGNAT) (NAT64 100.64.0.1)"),
     ("[64:ff9b:1::a00:1]", "private"), ("[2001::1]", "reserved")],
)  # fmt: skip
def test_each_class_of_address_is_refused_naming_its_class(address: str, kind: str) -> None:
    message = refused(f"http://{address}/hook", policy())
    assert f"resolves to a {kind} address" in message


@pytest.mark.parametrize(
    "address",
    [PUBLIC, "8.8.8.8", "[2606:2800:220:1::1]", "[::ffff:93.184.215.14]",
     "[64:ff9b::5db8:d70e]", "[2002:5db8:d70e::1]"],
)  # fmt: skip
def test_public_addresses_pass_the_policy_without_being_contacted(address: str) -> None:
    target = policy().admit(f"https://{address}/h?x=1")
    [checked] = target.addresses
    assert ip_address(checked) == ip_address(address.strip("[]")) and target.path == "/h?x=1"


def test_host_names_are_resolved_and_every_address_checked() -> None:
    target = policy().admit("https://hooks.example.org/h")
    assert (target.host, target.port, target.addresses) == ("hooks.example.org", 443, (PUBLIC,))
    for url in ("http://intranet.example/h", "http://rebound.example/h", "http://localhost/h",
                "http://metadata.google.internal/"):  # fmt: skip
        assert "resolves to a" in refused(url, policy())
    assert policy(allow_loopback=True).admit("http://localhost/h").addresses == ("127.0.0.1", "::1")


def test_the_loopback_flag_admits_loopback_and_nothing_else() -> None:
    loopback = policy(allow_loopback=True)
    assert loopback.admit("http://127.0.0.1:8080/h").addresses == ("127.0.0.1",)
    assert loopback.admit("http://[::1]:8080/h").addresses == ("::1",)
    for url in ("http://10.0.0.1/", "http://0.0.0.0:8080/", "http://169.254.169.254/",
                "http://100.64.0.1/", "http://[fe80::1]/", "http://[::ffff:10.0.0.1]/",
                "http://intranet.example/", "http://user@127.0.0.1/"):  # fmt: skip
        refused(url, loopback)


def test_the_allowlist_admits_named_hosts_and_networks_only() -> None:
    allowed = policy(allowlist=("intranet.example", "192.168.0.0/16", "fd00::/8", "169.254.0.0/16"))
    assert allowed.admit("http://intranet.example/h").addresses == ("10.1.2.3",)
    assert allowed.admit("http://INTRANET.example./h")
    assert allowed.admit("http://192.168.4.2:8080/h")
    assert allowed.admit("http://[::ffff:192.168.4.2]/h")
    assert allowed.admit("http://[fd00::5]/h")
    assert allowed.admit("http://169.254.1.1/h")
    for url in ("http://10.0.0.1/h", "http://127.0.0.1/h", "http://u:p@intranet.example/h"):
        refused(url, allowed)
    # a metadata address inside an allow-listed network stays refused unless listed exactly
    assert "cloud-metadata" in refused("http://169.254.169.254/", allowed)
    assert "cloud-metadata" in refused("http://[fd00:ec2::254]/", allowed)
    assert policy(allowlist=("169.254.169.254",)).admit("http://169.254.169.254/")


def test_the_real_resolver_resolves_localhost_and_not_an_invalid_name() -> None:
    assert "127.0.0.1" in resolve_host("localhost", 80)
    assert resolve_host("nowhere.invalid", 80) == []


# -- international host names: checked, resolved and compared as their A-labels --------------
IDN_NAMES = {"xn--bcher-kva.example": [PUBLIC], "xn--intrant-gya.example": ["10.1.2.3"],
             "xn--hks-seda.intranet.example": ["10.1.2.3"], "localhost": ["127.0.0.1"]}  # fmt: skip


class Resolver:
    """A table of names that records every name it is asked (it contacts nothing)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return IDN_NAMES.get(host.rstrip("."), [])


@pytest.mark.parametrize(
    "url",
    ["https://bücher.example/hook", "https://BÜCHER.example/hook", "https://xn--bcher-kva.example/hook",
     "https://XN--BCHER-KVA.EXAMPLE/hook", "https://bücher。example/hook", "https://bücher．example/hook",
     "https://bücher｡example/hook", "https://ｂüｃｈｅｒ.ｅｘａｍｐｌｅ/hook", "https://bü\u200bcher.example/hook"],
)  # fmt: skip
def test_an_international_host_is_resolved_and_sent_as_its_a_label(url: str) -> None:
    resolver = Resolver()
    target = WebhookPolicy(resolve=resolver).admit(url)
    assert (target.host, target.addresses, target.path) == (
        "xn--bcher-kva.example",
        (PUBLIC,),
        "/hook",
    )
    assert resolver.asked == ["xn--bcher-kva.example"]  # never the Unicode spelling
    assert check_webhook_url(url) == url  # the URL is kept as written


@pytest.mark.parametrize(
    ("url", "kind"),
    [("http://intranét.example/h", "private"), ("http://intranét。example。/h", "private"),
     ("http://ｌｏｃａｌｈｏｓｔ/h", "loopback"), ("http://LOCALHOST。/h", "loopback"),
     ("http://１２７.０.０.１/h", "loopback"), ("http://①②⑦.0.0.1/h", "loopback"),
     ("http://１０。０。０。１/h", "private")],
)  # fmt: skip
def test_an_international_spelling_of_a_non_public_host_is_refused_by_its_class(
    url: str, kind: str
) -> None:
    assert f"resolves to a {kind} address" in refused(url, WebhookPolicy(resolve=Resolver()))


@pytest.mark.parametrize(
    "host",
    ["xn--zz.example", "xn--.example", "xn--ls8h.la", "💩.la", "-bücher.example",
     "bücher-.example", "bücher..example", "bücher.example..", "。bücher.example",
     "\u202eelpmaxe.bücher", "a_b.bücher.example", "١٢٣.com", "a١.com", "ü" * 60 + ".example",
     ".".join(["bücherbücher"] * 13), "bü cher.example"],
)  # fmt: skip
def test_an_invalid_international_name_is_refused_before_any_resolution(host: str) -> None:
    resolver = Resolver()
    message = refused(f"https://{host}/hook", WebhookPolicy(allow_loopback=True, resolve=resolver))
    assert resolver.asked == []
    assert "resolves" not in message


@pytest.mark.parametrize(
    "host",
    ["-bücher.example", "bücher-.example", "bücher..example", "bücher.example..",
     "。bücher.example", "a_b.bücher.example", "bü\u3000cher.example", "bü\x85cher.example",
     "b\ue000ücher.example", "ü" * 64 + ".example"],
)  # fmt: skip
def test_the_domain_refuses_an_international_name_of_the_wrong_shape(host: str) -> None:
    """Without the IDNA tables (domain/ is stdlib only) the shape is checked when the
    subscription is made: empty labels, hyphens at an end, spaces, controls, private use."""
    with pytest.raises(InvalidValue, match="not a valid international domain name"):
        check_webhook_url(f"https://{host}/hook")


@pytest.mark.parametrize(
    "url",
    ["https://bücher.example：8080/h", "https://bücher.example／h", "https://user＠bücher.example/h",
     "https://bücher.example＃h"],
)  # fmt: skip
def test_a_character_that_folds_into_url_syntax_does_not_parse(url: str) -> None:
    assert "does not parse" in refused(url, WebhookPolicy(resolve=Resolver()))


def test_the_allowlist_names_hosts_by_their_a_labels_and_admits_no_lookalike() -> None:
    allowed = WebhookPolicy(
        resolve=Resolver(), allowlist=("intranét.example", "hooks.intranet.example")
    )
    for url in ("http://intranét.example/h", "http://xn--intrant-gya.example/h",
                "http://INTRANÉT。example。/h"):  # fmt: skip
        assert allowed.admit(url).addresses == ("10.1.2.3",)  # listed: not classified
    # "hооks" with two Cyrillic o: another name (xn--hks-seda), classified like any other
    assert "private" in refused("http://hооks.intranet.example/h", allowed)
    assert WebhookPolicy(allowlist=("xn--bcher-kva.example",))._names() == {"xn--bcher-kva.example"}
