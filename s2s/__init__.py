"""s2s: BiLSTM encoder, attention LSTM decoder: translation and speech recognition."""

__version__ = "0.1.0"
