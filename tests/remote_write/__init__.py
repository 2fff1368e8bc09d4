"""Tests for promrw_doctor.remote_write."""
