//! Unit tests for config validation (filled in by the config test suite).
