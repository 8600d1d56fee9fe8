"""Development-only code: the local workflow runner, emulators and sample data (never shipped in a Lambda artifact)."""
