"""Database triggers that keep the console's running totals (issue 21): every change to a deal's custody balance
and to a deal's (product, workflow, state) appends a delta row to `figure_deltas` in the changing statement's own
transaction, whoever writes it (`ledger_apply`, the batch engine, the services' ORM, an import's bulk insert).
The worker folds the deltas into `figure_totals` (`app.figures.totals.fold`); the home page reads totals plus the
unfolded deltas in one statement, so it is exact without a scan of the book.

Figures and keys (`|`-joined; no code the platform issues contains `|`):
- `custody`: `city|bank|product` -> the posted balance of the deals' custody accounts (`custody:<deal no>`),
  natural side (credit-normal for the liability they are); pending holds are not in it, as before;
- `deals`: `product|workflow id|workflow version|state` -> how many deals are there.

A custody account's row moves when a posting, a hold's post or a hot buffer's fold writes its totals: a custody
account is never hot, so its figure moves with the posting itself. Deals' city, bank and product are fixed at
creation; a change of them (no code makes one) still moves the deal's custody balance to its new key.
"""

from __future__ import annotations

SEPARATOR = "|"
CUSTODY = "custody"
DEALS = "deals"

# --- SQLite: row triggers with the arithmetic inline ------------------------------------------------

_BAL = "CASE WHEN {r}.type IN ('asset', 'expense') THEN {r}.debits_posted - {r}.credits_posted ELSE {r}.credits_posted - {r}.debits_posted END"  # noqa: E501
_DEAL_KEY_SQLITE = "{r}.product || '|' || {r}.workflow_id || '|' || {r}.workflow_version || '|' || {r}.state"
_CUSTODY_KEY = "{r}.city_code || '|' || {r}.bank_code || '|' || {r}.product"
_DEAL_CHANGED = (
    "OLD.state IS NOT NEW.state OR OLD.product IS NOT NEW.product OR OLD.workflow_id IS NOT NEW.workflow_id"
    " OR OLD.workflow_version IS NOT NEW.workflow_version OR OLD.city_code IS NOT NEW.city_code"
    " OR OLD.bank_code IS NOT NEW.bank_code"
)
_PLACE_CHANGED = (
    "OLD.city_code IS NOT NEW.city_code OR OLD.bank_code IS NOT NEW.bank_code OR OLD.product IS NOT NEW.product"
)
_DEAL_CUSTODY = (
    "(SELECT sum(" + _BAL.format(r="a") + ") FROM ledger_accounts AS a"
    " WHERE a.deal_id = NEW.id AND substr(a.code, 1, 8) = 'custody:')"
)

SQLITE = (
    "CREATE TRIGGER figures_deal_created AFTER INSERT ON deals BEGIN"
    " INSERT INTO figure_deltas (figure, key, delta) VALUES ('deals', "
    + _DEAL_KEY_SQLITE.format(r="NEW")
    + ", 1); END",
    "CREATE TRIGGER figures_deal_removed AFTER DELETE ON deals BEGIN"
    " INSERT INTO figure_deltas (figure, key, delta) VALUES ('deals', "
    + _DEAL_KEY_SQLITE.format(r="OLD")
    + ", -1); END",
    "CREATE TRIGGER figures_deal_changed AFTER UPDATE OF state, product, workflow_id, workflow_version, city_code,"
    f" bank_code ON deals WHEN {_DEAL_CHANGED} BEGIN"
    " INSERT INTO figure_deltas (figure, key, delta) VALUES ('deals', "
    + _DEAL_KEY_SQLITE.format(r="OLD")
    + ", -1), ('deals', "
    + _DEAL_KEY_SQLITE.format(r="NEW")
    + ", 1);"
    " INSERT INTO figure_deltas (figure, key, delta) SELECT 'custody', "
    + _CUSTODY_KEY.format(r="OLD")
    + f", -moved FROM (SELECT {_DEAL_CUSTODY} AS moved) WHERE moved <> 0 AND ({_PLACE_CHANGED});"
    " INSERT INTO figure_deltas (figure, key, delta) SELECT 'custody', "
    + _CUSTODY_KEY.format(r="NEW")
    + f", moved FROM (SELECT {_DEAL_CUSTODY} AS moved) WHERE moved <> 0 AND ({_PLACE_CHANGED}); END",
    "CREATE TRIGGER figures_custody_opened AFTER INSERT ON ledger_accounts"
    " WHEN NEW.deal_id IS NOT NULL AND substr(NEW.code, 1, 8) = 'custody:'"
    " AND (NEW.debits_posted <> 0 OR NEW.credits_posted <> 0)"
    " BEGIN INSERT INTO figure_deltas (figure, key, delta) SELECT 'custody', "
    + _CUSTODY_KEY.format(r="d")
    + ", "
    + _BAL.format(r="NEW")
    + " FROM deals AS d WHERE d.id = NEW.deal_id; END",
    "CREATE TRIGGER figures_custody_moved AFTER UPDATE OF debits_posted, credits_posted ON ledger_accounts"
    " WHEN NEW.deal_id IS NOT NULL AND substr(NEW.code, 1, 8) = 'custody:'"
    " AND (NEW.debits_posted IS NOT OLD.debits_posted OR NEW.credits_posted IS NOT OLD.credits_posted)"
    " BEGIN INSERT INTO figure_deltas (figure, key, delta) SELECT 'custody', "
    + _CUSTODY_KEY.format(r="d")
    + ", ("
    + _BAL.format(r="NEW")
    + ") - ("
    + _BAL.format(r="OLD")
    + ") FROM deals AS d WHERE d.id = NEW.deal_id; END",
)
SQLITE_DROP = tuple(
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "figures_deal_created",
        "figures_deal_removed",
        "figures_deal_changed",
        "figures_custody_opened",
        "figures_custody_moved",
    )
)

# --- PostgreSQL: one plpgsql function per table, row triggers filtered by WHEN (no call when nothing moves) --

_DEAL_KEY_PG = "{r}.product || '|' || {r}.workflow_id || '|' || {r}.workflow_version::text || '|' || {r}.state"

POSTGRESQL = (
    r"""CREATE FUNCTION figures_deal_delta() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    moved bigint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO figure_deltas (figure, key, delta) VALUES ('deals', """
    + _DEAL_KEY_PG.format(r="OLD")
    + r""", -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO figure_deltas (figure, key, delta) VALUES ('deals', """
    + _DEAL_KEY_PG.format(r="NEW")
    + r""", 1);
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.city_code, OLD.bank_code, OLD.product)
            IS DISTINCT FROM (NEW.city_code, NEW.bank_code, NEW.product) THEN
        SELECT sum("""
    + _BAL.format(r="a")
    + r""") INTO moved FROM ledger_accounts AS a
        WHERE a.deal_id = NEW.id AND substr(a.code, 1, 8) = 'custody:';
        IF coalesce(moved, 0) <> 0 THEN
            INSERT INTO figure_deltas (figure, key, delta) VALUES
                ('custody', """
    + _CUSTODY_KEY.format(r="OLD")
    + r""", -moved),
                ('custody', """
    + _CUSTODY_KEY.format(r="NEW")
    + r""", moved);
        END IF;
    END IF;
    RETURN NULL;
END
$fn$""",
    r"""CREATE FUNCTION figures_custody_delta() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO figure_deltas (figure, key, delta)
    SELECT 'custody', """
    + _CUSTODY_KEY.format(r="d")
    + ", ("
    + _BAL.format(r="NEW")
    + r""") - CASE WHEN TG_OP = 'UPDATE' THEN """
    + _BAL.format(r="OLD")
    + r""" ELSE 0 END
    FROM deals AS d WHERE d.id = NEW.deal_id;
    RETURN NULL;
END
$fn$""",
    "CREATE TRIGGER figures_deal_counted AFTER INSERT OR DELETE ON deals"
    " FOR EACH ROW EXECUTE FUNCTION figures_deal_delta()",
    "CREATE TRIGGER figures_deal_changed AFTER UPDATE OF state, product, workflow_id, workflow_version, city_code,"
    " bank_code ON deals FOR EACH ROW WHEN ((OLD.state, OLD.product, OLD.workflow_id, OLD.workflow_version,"
    " OLD.city_code, OLD.bank_code) IS DISTINCT FROM (NEW.state, NEW.product, NEW.workflow_id, NEW.workflow_version,"
    " NEW.city_code, NEW.bank_code)) EXECUTE FUNCTION figures_deal_delta()",
    "CREATE TRIGGER figures_custody_opened AFTER INSERT ON ledger_accounts FOR EACH ROW"
    " WHEN (NEW.deal_id IS NOT NULL AND substr(NEW.code, 1, 8) = 'custody:'"
    " AND (NEW.debits_posted <> 0 OR NEW.credits_posted <> 0)) EXECUTE FUNCTION figures_custody_delta()",
    "CREATE TRIGGER figures_custody_moved AFTER UPDATE OF debits_posted, credits_posted ON ledger_accounts"
    " FOR EACH ROW WHEN (NEW.deal_id IS NOT NULL AND substr(NEW.code, 1, 8) = 'custody:'"
    " AND (NEW.debits_posted, NEW.credits_posted) IS DISTINCT FROM (OLD.debits_posted, OLD.credits_posted))"
    " EXECUTE FUNCTION figures_custody_delta()",
)
POSTGRESQL_DROP = (
    "DROP TRIGGER IF EXISTS figures_custody_moved ON ledger_accounts",
    "DROP TRIGGER IF EXISTS figures_custody_opened ON ledger_accounts",
    "DROP TRIGGER IF EXISTS figures_deal_changed ON deals",
    "DROP TRIGGER IF EXISTS figures_deal_counted ON deals",
)
FUNCTIONS_DROP = ("DROP FUNCTION IF EXISTS figures_custody_delta()", "DROP FUNCTION IF EXISTS figures_deal_delta()")
POSTGRESQL_DROP += FUNCTIONS_DROP

# The figures recounted from the book (what the triggers keep): the migration's backfill, `flask ledger
# figures --check`, and the tests compare the kept figures with it.
RECOUNT = (
    "SELECT 'custody' AS figure, " + _CUSTODY_KEY.format(r="d") + " AS key, sum(" + _BAL.format(r="a") + ") AS value"
    " FROM ledger_accounts AS a JOIN deals AS d ON d.id = a.deal_id WHERE substr(a.code, 1, 8) = 'custody:'"
    " GROUP BY d.city_code, d.bank_code, d.product"
    " UNION ALL SELECT 'deals', {deal_key}, count(*) FROM deals AS d"
    " GROUP BY d.product, d.workflow_id, d.workflow_version, d.state"
)


def recount_sql(dialect: str) -> str:
    key = (_DEAL_KEY_PG if dialect == "postgresql" else _DEAL_KEY_SQLITE).format(r="d")
    return RECOUNT.replace("{deal_key}", key)


def statements(dialect: str, *, drop: bool = False) -> tuple[str, ...]:
    if dialect == "sqlite":
        return SQLITE_DROP if drop else SQLITE
    if dialect == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL
    raise ValueError(f"no figure triggers for dialect {dialect!r}")
