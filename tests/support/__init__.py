"""Test helpers shipped with the test suite (a file-backed keyring, a scripted Zephr user)."""
