"""Bridges: every SARA callback, enabled by name, inside another framework's trainer.

One module per framework, each importing its framework only when it is imported itself, and each shipped as an
extra of the distribution:

* :mod:`altametris.sara.integrations.lightning` (``pip install sara-callbacks[lightning]``): a
  ``lightning.pytorch.Callback`` for the Lightning 2.x ``Trainer``;
* :mod:`altametris.sara.integrations.transformers` (``sara-callbacks[transformers]``): a
  ``transformers.TrainerCallback`` for the Hugging Face ``Trainer``;
* :mod:`altametris.sara.integrations.keras` (``sara-callbacks[keras]``): a ``keras.callbacks.Callback`` for Keras 3
  ``model.fit``, on any backend.

Each has a ``SaraCallback(source)`` built from a
:class:`~altametris.sara.core.base_callback.CallbackManager` or a config (a mapping, or a ``.toml``, ``.yaml`` or
``.json`` path, as :meth:`~altametris.sara.core.base_callback.CallbackManager.from_config` reads it), exposing the
manager as ``.manager``. Importing this package imports no framework.
"""

from __future__ import annotations

__all__: list[str] = []
