"""Tests for promrw_doctor.forwarder."""
