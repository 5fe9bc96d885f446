"""Coverage-guided fuzz harnesses of regnet_keras' readers of user files (see fuzz/runner.py)."""
