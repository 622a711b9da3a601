"""The HTTP service: Flask app factory, blueprints, marshmallow schemas and error mapping."""
