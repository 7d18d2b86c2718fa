"""Test support: servers, emulators and event expectations, shared by every test module (one home each)."""
