"""The web demo: the converted models classifying images in a browser page with LiteRT.js."""
