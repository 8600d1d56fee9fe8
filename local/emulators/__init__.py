"""Services moto does not run, emulated in-process at botocore's before-send hook (Athena, Bedrock Runtime)."""
