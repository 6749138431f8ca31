"""Untrusted bytes in: images, archives and model files, each measured against a budget
before it is decoded, and read in a sandboxed worker where it comes from a user."""
