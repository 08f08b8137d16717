"""The scale-out test is about PostgreSQL (several servers sharing one database): it is collected only
where a PostgreSQL server is configured (CI sets CUNGUAN_TEST_POSTGRES_URL), instead of being skipped."""

from __future__ import annotations

from tests.conftest import POSTGRES_URL

collect_ignore = [] if POSTGRES_URL else ["test_scale_out.py"]
