"""Sample data generators, one module per use case: ``generate(s3, access_point_arn, *, objects, seed)``."""
