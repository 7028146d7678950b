"""The bundled sample portal and the engine of ``xxgk demo``."""
