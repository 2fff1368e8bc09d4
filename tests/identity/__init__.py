"""Tests for promrw_doctor.identity."""
