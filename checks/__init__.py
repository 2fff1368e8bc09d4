"""Built-in checks, one small module (or a few related checks) per file, grouped by domain.

Shipped in the wheel as ``promrw_doctor.checks``. The core never imports a specific
check: the registry walks this package.
"""
