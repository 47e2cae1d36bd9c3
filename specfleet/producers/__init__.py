"""Producers that span pipelines, above them in the import layers (the CLI
and the demo call these; a pipeline never imports them). A producer that
belongs to one pipeline lives in that pipeline's package
(``pipelines/hydrophone/producer.py``, ``pipelines/spectrogram/producer.py``)."""
