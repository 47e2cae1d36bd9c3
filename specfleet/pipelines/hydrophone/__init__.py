"""Hydrophone pipeline: OOI day listing -> 5-second WAV + spectrogram clips on S3."""
