"""Code shared by every Lambda function of every use case; shipped as the Lambda layer."""
