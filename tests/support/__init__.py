"""Test helpers shipped with the test suite: a file-backed keyring, a scripted Zephr user, a CLI runner,
raw HTTP, a forwarding proxy, junk and crash-test workers, and the secrets-scan and evidence plugins."""
