"""The embedded local workflow runner (docs/local-runner.md): ``run.run_use_case`` runs a use case's
pipeline on moto with the engine extensions of ``engine``, the in-process Lambda runtime of
``lambdas`` and the emulators of ``local.emulators``."""

from local.runner.deferred_imports import defer_moto_batch

defer_moto_batch()
