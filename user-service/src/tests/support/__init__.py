"""Helpers the test suite shares."""
