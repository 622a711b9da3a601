-- The quantile-bucket spike of the medians (issue 13, item 3), measured and NOT taken: see
-- docs/benchmarks.md, "The medians: what was measured". Run by hand with psql on a schema that
-- holds a derived pr_spans (search_path set to it), `-v B=32` for 32 buckets per figure; it
-- makes the mb_* tables beside the spans (drop them afterwards). The bucket bounds only
-- decide the speed, never the answer: the k-th value is found by counting whole buckets, then
-- sorting the alive values of the one bucket that holds it.
SET work_mem = '256MB';
DROP TABLE IF EXISTS mb_bounds, mb_spans, mb_deltas, mb_cp;
CREATE TABLE mb_bounds AS
SELECT 's' AS fig, (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(percentile_disc((SELECT array_agg(i::float8 / :B) FROM generate_series(1, :B - 1) i)) WITHIN GROUP (ORDER BY schedule_drift)) x) AS bounds FROM pr_spans WHERE projects = 1 AND schedules = 1
UNION ALL
SELECT 'b', (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(percentile_disc((SELECT array_agg(i::float8 / :B) FROM generate_series(1, :B - 1) i)) WITHIN GROUP (ORDER BY budget_drift)) x) FROM pr_spans WHERE projects = 1 AND budgets = 1;
CREATE TABLE mb_spans AS SELECT s.*,
  CASE WHEN schedules = 1 THEN width_bucket(schedule_drift, (SELECT bounds FROM mb_bounds WHERE fig = 's')) END::smallint AS sb,
  CASE WHEN budgets = 1 THEN width_bucket(budget_drift, (SELECT bounds FROM mb_bounds WHERE fig = 'b')) END::smallint AS bb
  FROM pr_spans s;
-- counts per (day, dimension: a recorded ministry code or a phase, figure, bucket)
CREATE TABLE mb_deltas AS SELECT day, dim, fig, bucket, sum(n)::int AS n FROM (
  SELECT valid_from AS day, v.dim, f.fig, f.bucket, 1 AS n FROM mb_spans s CROSS JOIN LATERAL (VALUES ('m:' || ministry_code), ('p:' || phase)) v(dim) CROSS JOIN LATERAL (VALUES ('s', sb), ('b', bb)) f(fig, bucket) WHERE projects = 1 AND f.bucket IS NOT NULL
  UNION ALL
  SELECT valid_to, v.dim, f.fig, f.bucket, -1 FROM mb_spans s CROSS JOIN LATERAL (VALUES ('m:' || ministry_code), ('p:' || phase)) v(dim) CROSS JOIN LATERAL (VALUES ('s', sb), ('b', bb)) f(fig, bucket) WHERE projects = 1 AND f.bucket IS NOT NULL AND valid_to IS NOT NULL) d
  GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0;
ALTER TABLE mb_deltas ADD PRIMARY KEY (day, dim, fig, bucket);
CREATE TABLE mb_cp AS
WITH m AS (SELECT (date_trunc('month', day) + interval '1 month')::date AS month, dim, fig, bucket, sum(n) AS n FROM mb_deltas GROUP BY 1, 2, 3, 4),
a AS (SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM m),
g AS (SELECT DISTINCT dim, fig, bucket FROM m)
SELECT a.month, g.dim, g.fig, g.bucket, (sum(coalesce(m.n, 0)) OVER (PARTITION BY g.dim, g.fig, g.bucket ORDER BY a.month))::int AS n
FROM a CROSS JOIN g LEFT JOIN m ON m.month = a.month AND m.dim = g.dim AND m.fig = g.fig AND m.bucket = g.bucket;
DELETE FROM mb_cp WHERE n = 0;
ALTER TABLE mb_cp ADD PRIMARY KEY (month, dim, fig, bucket);
CREATE INDEX mb_s_during ON mb_spans USING spgist (int8range(sb * 100000 + (valid_from - date '2000-01-01'), sb * 100000 + coalesce(valid_to - date '2000-01-01', 99999))) INCLUDE (ministry_code, phase, schedule_drift) WHERE projects = 1 AND sb IS NOT NULL;
CREATE INDEX mb_b_during ON mb_spans USING spgist (int8range(bb * 100000 + (valid_from - date '2000-01-01'), bb * 100000 + coalesce(valid_to - date '2000-01-01', 99999))) INCLUDE (ministry_code, phase, budget_drift) WHERE projects = 1 AND bb IS NOT NULL;
VACUUM ANALYZE mb_spans; VACUUM ANALYZE pr_spans; ANALYZE mb_deltas; ANALYZE mb_cp;
SELECT (SELECT count(*) FROM mb_deltas) AS deltas, (SELECT count(*) FROM mb_cp) AS cps, (SELECT count(*) FROM pr_spans) AS spans;

-- The read, per date %s: the counts per (dimension, figure, bucket) on that date ...
SELECT dim, fig, bucket, sum(n) FROM (SELECT dim, fig, bucket, n FROM mb_cp WHERE month = (SELECT max(month) FROM mb_cp WHERE month <= %s) UNION ALL SELECT dim, fig, bucket, n FROM mb_deltas WHERE day <= %s AND day >= (SELECT max(month) FROM mb_cp WHERE month <= %s)) u GROUP BY 1, 2, 3
-- ... then the alive values of one bucket (here bucket 16 of the schedule drifts), sorted.
SELECT ministry_code, phase, schedule_drift FROM mb_spans WHERE projects = 1 AND sb IS NOT NULL AND int8range(sb * 100000 + (valid_from - date '2000-01-01'), sb * 100000 + coalesce(valid_to - date '2000-01-01', 99999)) @> (16 * 100000 + (%s::date - date '2000-01-01'))::int8 ORDER BY schedule_drift
