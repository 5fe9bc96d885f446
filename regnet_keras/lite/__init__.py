"""The phone side: quantization-aware training, TFLite conversion and metadata, LiteRT timing, and
the app-side image pipeline that the Android and web demos reproduce."""
