"""PostgreSQL: one ledger operation (a posting, a hold, or a hold's post / void) as one server-side function.

`ledger_apply` does in one round trip what the batch engine (`app.ledger.engine`) does for a batch of one
operation, with the same rules (`app.domain.ledger_batch`) and the same result codes:

1. an operation whose id exists is `exists` when it says the same, else `TRANSFER_ID_CONFLICT`;
2. a resolution's hold is found (`PENDING_NOT_FOUND`); every account side the operation may make unsafe is
   row-locked in id order (FOR NO KEY UPDATE, one statement); a safe posting to a hot account is not locked
   but buffered; a locked hot account's buffer is folded first;
3. `UNKNOWN_ACCOUNT`, `PENDING_ALREADY_RESOLVED`, `BAD_AMOUNT` and the accounts' flags (`BALANCE_CONSTRAINT`)
   are checked against the exact totals;
4. the transfer is inserted (ON CONFLICT DO NOTHING: a concurrent transaction that committed the same id
   first sends it back to 1); only if it was, one UPDATE writes the locked accounts' totals and the buffered
   sides' deltas go to the hot buffer (plain statements: cheaper for the server than one statement of four
   data-modifying CTEs joined to a VALUES list, and as atomic inside the caller's statement);
5. a low-balance alert is raised or cleared on every locked hot account.

It never commits: it runs in the caller's transaction. It returns one compact jsonb value (one column to
read, keys present only when they say something): `s` the result code, `d` the details the Python path
gives, `t` the transfer (created or existing: debit and credit account ids, amount, code, kind, pending id,
timeout, deal, created at), `h` the locked ordinary accounts with their totals, `r` the account a broken
flag refused with the totals it would have had (for the message) and `a` the alerts raised or cleared (for
the log). The database's CHECK constraints and immutability triggers stay the last line of defence.
SQLite has no such function: there the batch engine runs the operation.
"""

from __future__ import annotations

SIGNATURE = (
    "ledger_apply(varchar, varchar, varchar, varchar, bigint, varchar, bigint, varchar, timestamptz,"
    " timestamptz, timestamptz)"
)

CREATE = r"""
CREATE OR REPLACE FUNCTION ledger_apply(
    p_kind varchar, p_id varchar, p_debit varchar, p_credit varchar, p_amount bigint, p_code varchar,
    p_deal bigint, p_pending varchar, p_timeout timestamptz, p_at timestamptz, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    o_status text;
    o_details jsonb;
    o_held jsonb;
    o_refused jsonb;
    o_alerts jsonb;
    o jsonb;
    t ledger_transfers;
    pend ledger_transfers;
    d ledger_accounts;
    c ledger_accounts;
    r ledger_accounts;
    f record;
    resolution boolean := p_kind IN ('post_pending', 'void_pending');
    d_lock boolean;
    c_lock boolean;
    d_new bigint[];  -- debits_posted, credits_posted, debits_pending, credits_pending after the operation
    c_new bigint[];
    amount bigint;
    by_id varchar;
    refused_id bigint;
    projected bigint;
    low boolean;
    open_id bigint;
BEGIN
    o_held := '[]';
    o_alerts := '[]';
    FOR attempt IN 1..2 LOOP  -- a second pass only when a concurrent transaction committed this id first
        -- 1. idempotent on the id
        SELECT * INTO t FROM ledger_transfers WHERE id = p_id;
        IF FOUND THEN
            IF coalesce(CASE WHEN resolution
                THEN t.kind = p_kind AND t.pending_id = p_pending AND (p_amount IS NULL OR t.amount_fen = p_amount)
                ELSE t.kind = p_kind AND t.amount_fen = p_amount AND t.code = p_code
                    AND t.debit_account_id = (SELECT id FROM ledger_accounts WHERE code = p_debit)
                    AND t.credit_account_id = (SELECT id FROM ledger_accounts WHERE code = p_credit)
                END, false) THEN
                o_status := 'exists';
            ELSE
                o_status := 'TRANSFER_ID_CONFLICT';
                o_details := jsonb_build_object('id', p_id);
                t := NULL;
            END IF;
            EXIT;
        END IF;
        -- 2. the accounts: every side the operation may make unsafe row-locked in id order in one statement (as
        -- the batch engine locks), a safe side of a hot account read without a lock (it will be buffered)
        d_lock := false;
        c_lock := false;
        IF resolution THEN
            SELECT * INTO pend FROM ledger_transfers WHERE id = p_pending;
            IF NOT FOUND OR pend.kind <> 'pending' THEN
                o_status := 'PENDING_NOT_FOUND';
                o_details := jsonb_build_object('pending_id', p_pending);
                EXIT;
            END IF;
            FOR r IN SELECT * FROM ledger_accounts WHERE id IN (pend.debit_account_id, pend.credit_account_id)
                ORDER BY id FOR NO KEY UPDATE
            LOOP
                IF r.id = pend.debit_account_id THEN d := r; ELSE c := r; END IF;
            END LOOP;
            d_lock := true;
            c_lock := true;
        ELSE
            FOR r IN SELECT * FROM ledger_accounts AS a WHERE a.code IN (p_debit, p_credit)
                AND NOT (a.hot AND p_kind = 'single' AND NOT CASE WHEN a.code = p_debit
                    THEN a.debits_must_not_exceed_credits ELSE a.credits_must_not_exceed_debits END)
                ORDER BY a.id FOR NO KEY UPDATE
            LOOP
                IF r.code = p_debit THEN d := r; d_lock := true; ELSE c := r; c_lock := true; END IF;
            END LOOP;
            IF NOT d_lock THEN
                SELECT * INTO d FROM ledger_accounts WHERE code = p_debit;
            END IF;
            IF NOT c_lock THEN
                SELECT * INTO c FROM ledger_accounts WHERE code = p_credit;
            END IF;
        END IF;
        -- fold the buffers of locked hot accounts
        IF (d_lock AND d.hot) OR (c_lock AND c.hot) THEN
            FOR f IN WITH gone AS (
                DELETE FROM ledger_hot_entries
                WHERE account_id IN (CASE WHEN d_lock AND d.hot THEN d.id END, CASE WHEN c_lock AND c.hot THEN c.id END)
                RETURNING account_id, debits_posted, credits_posted
            ) SELECT account_id, sum(debits_posted)::bigint AS dp, sum(credits_posted)::bigint AS cp
              FROM gone GROUP BY account_id
            LOOP
                UPDATE ledger_accounts SET debits_posted = debits_posted + f.dp, credits_posted = credits_posted + f.cp
                WHERE id = f.account_id;
                IF f.account_id = d.id THEN
                    d.debits_posted := d.debits_posted + f.dp;
                    d.credits_posted := d.credits_posted + f.cp;
                ELSE
                    c.debits_posted := c.debits_posted + f.dp;
                    c.credits_posted := c.credits_posted + f.cp;
                END IF;
            END LOOP;
        END IF;
        IF d.id IS NULL OR c.id IS NULL THEN
            o_status := 'UNKNOWN_ACCOUNT';
            o_details := jsonb_build_object('account', CASE WHEN d.id IS NULL THEN p_debit ELSE p_credit END);
            EXIT;
        END IF;
        -- 3. the rules, against the exact totals of what is locked (a buffered side starts from zero: deltas)
        d_new := CASE WHEN d_lock THEN ARRAY[d.debits_posted, d.credits_posted, d.debits_pending, d.credits_pending]
                 ELSE ARRAY[0, 0, 0, 0]::bigint[] END;
        c_new := CASE WHEN c_lock THEN ARRAY[c.debits_posted, c.credits_posted, c.debits_pending, c.credits_pending]
                 ELSE ARRAY[0, 0, 0, 0]::bigint[] END;
        IF resolution THEN
            SELECT id INTO by_id FROM ledger_transfers WHERE pending_id = p_pending;
            IF FOUND THEN
                IF by_id = p_id THEN
                    CONTINUE;  -- committed meanwhile by another transaction: look it up again
                END IF;
                o_status := 'PENDING_ALREADY_RESOLVED';
                o_details := jsonb_build_object('pending_id', p_pending, 'by', by_id);
                EXIT;
            END IF;
            amount := coalesce(p_amount, pend.amount_fen);
            IF p_kind = 'post_pending' AND NOT (0 < amount AND amount <= pend.amount_fen) THEN
                o_status := 'BAD_AMOUNT';
                o_details := jsonb_build_object('pending_fen', pend.amount_fen, 'amount_fen', amount);
                EXIT;
            END IF;
            d_new[3] := d_new[3] - pend.amount_fen;
            c_new[4] := c_new[4] - pend.amount_fen;
            IF p_kind = 'post_pending' THEN
                d_new[1] := d_new[1] + amount;
                c_new[2] := c_new[2] + amount;
            END IF;
        ELSE
            amount := p_amount;
            IF p_kind = 'pending' THEN
                d_new[3] := d_new[3] + amount;
                c_new[4] := c_new[4] + amount;
            ELSE
                d_new[1] := d_new[1] + amount;
                c_new[2] := c_new[2] + amount;
            END IF;
        END IF;
        IF d_lock AND ((d.debits_must_not_exceed_credits AND d_new[1] + d_new[3] > d_new[2])
                OR (d.credits_must_not_exceed_debits AND d_new[2] + d_new[4] > d_new[1])) THEN
            refused_id := d.id;
            o_refused := jsonb_build_array(d.id, d.code, d.type, d.debits_must_not_exceed_credits,
                d.credits_must_not_exceed_debits, d.alert_below_fen, d_new[1], d_new[2], d_new[3], d_new[4]);
            o_details := jsonb_build_object('account', d.code);
        ELSIF c_lock AND ((c.debits_must_not_exceed_credits AND c_new[1] + c_new[3] > c_new[2])
                OR (c.credits_must_not_exceed_debits AND c_new[2] + c_new[4] > c_new[1])) THEN
            refused_id := c.id;
            o_refused := jsonb_build_array(c.id, c.code, c.type, c.debits_must_not_exceed_credits,
                c.credits_must_not_exceed_debits, c.alert_below_fen, c_new[1], c_new[2], c_new[3], c_new[4]);
            o_details := jsonb_build_object('account', c.code);
        END IF;
        IF refused_id IS NOT NULL THEN
            o_status := 'BALANCE_CONSTRAINT';
            EXIT;
        END IF;
        -- 4. write: the transfer, and only if it was inserted, the locked sides' totals (one UPDATE) and the
        -- buffered sides' deltas
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount_fen, code, kind,
            pending_id, timeout_at, deal_id, created_at)
        VALUES (p_id, d.id, c.id, amount, CASE WHEN resolution THEN pend.code ELSE p_code END, p_kind,
            p_pending, CASE WHEN resolution THEN NULL ELSE p_timeout END,
            CASE WHEN resolution THEN pend.deal_id ELSE p_deal END, p_at)
        ON CONFLICT (id) DO NOTHING
        RETURNING * INTO t;
        IF NOT FOUND THEN
            CONTINUE;  -- committed meanwhile by another transaction: look it up again
        END IF;
        IF d_lock OR c_lock THEN
            UPDATE ledger_accounts AS a
            SET debits_posted = CASE WHEN a.id = d.id THEN d_new[1] ELSE c_new[1] END,
                credits_posted = CASE WHEN a.id = d.id THEN d_new[2] ELSE c_new[2] END,
                debits_pending = CASE WHEN a.id = d.id THEN d_new[3] ELSE c_new[3] END,
                credits_pending = CASE WHEN a.id = d.id THEN d_new[4] ELSE c_new[4] END
            WHERE a.id IN (CASE WHEN d_lock THEN d.id END, CASE WHEN c_lock THEN c.id END);
        END IF;
        IF NOT d_lock AND (d_new[1] <> 0 OR d_new[2] <> 0) THEN
            INSERT INTO ledger_hot_entries (account_id, debits_posted, credits_posted, created_at)
            VALUES (d.id, d_new[1], d_new[2], p_now);
        END IF;
        IF NOT c_lock AND (c_new[1] <> 0 OR c_new[2] <> 0) THEN
            INSERT INTO ledger_hot_entries (account_id, debits_posted, credits_posted, created_at)
            VALUES (c.id, c_new[1], c_new[2], p_now);
        END IF;
        IF d_lock THEN
            d.debits_posted := d_new[1]; d.credits_posted := d_new[2];
            d.debits_pending := d_new[3]; d.credits_pending := d_new[4];
        END IF;
        IF c_lock THEN
            c.debits_posted := c_new[1]; c.credits_posted := c_new[2];
            c.debits_pending := c_new[3]; c.credits_pending := c_new[4];
        END IF;
        o_status := 'created';
        EXIT;
    END LOOP;
    IF o_status IS NULL THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_apply: transfer ' || p_id || ' neither written nor found';
    END IF;
    IF o_status NOT IN ('exists', 'TRANSFER_ID_CONFLICT', 'PENDING_NOT_FOUND') THEN
        -- 5. what is locked: the ordinary accounts (their exact totals, for the caller), the hot ones' alerts
        FOREACH r IN ARRAY ARRAY[d, c] LOOP
            CONTINUE WHEN NOT coalesce((r.id = d.id AND d_lock) OR (r.id = c.id AND c_lock), false);
            IF NOT r.hot THEN
                o_held := o_held || jsonb_build_array(jsonb_build_array(r.id, r.code, r.type,
                    r.debits_must_not_exceed_credits, r.credits_must_not_exceed_debits, r.alert_below_fen,
                    r.debits_posted, r.credits_posted, r.debits_pending, r.credits_pending));
                CONTINUE;
            END IF;
            projected := CASE
                WHEN r.credits_must_not_exceed_debits THEN r.debits_posted - r.credits_posted - r.credits_pending
                WHEN r.debits_must_not_exceed_credits THEN r.credits_posted - r.debits_posted - r.debits_pending
                WHEN r.type IN ('asset', 'expense') THEN r.debits_posted - r.credits_posted
                ELSE r.credits_posted - r.debits_posted END;
            low := (r.alert_below_fen IS NOT NULL AND projected < r.alert_below_fen)
                OR r.id IS NOT DISTINCT FROM refused_id;
            SELECT id INTO open_id FROM ledger_alerts WHERE account_id = r.id AND cleared_at IS NULL
            ORDER BY id DESC LIMIT 1;
            IF low AND open_id IS NULL THEN
                INSERT INTO ledger_alerts (account_id, projected_fen, threshold_fen, raised_at)
                VALUES (r.id, projected, coalesce(r.alert_below_fen, 0), p_now);
                o_alerts := o_alerts || jsonb_build_array(jsonb_build_array(r.code, projected,
                    coalesce(r.alert_below_fen, 0), true));
            ELSIF NOT low AND open_id IS NOT NULL THEN
                UPDATE ledger_alerts SET cleared_at = p_now WHERE id = open_id;
                o_alerts := o_alerts || jsonb_build_array(jsonb_build_array(r.code, projected,
                    coalesce(r.alert_below_fen, 0), false));
            END IF;
        END LOOP;
    END IF;
    -- 6. one compact value: only what the caller reads
    o := jsonb_build_object('s', o_status);
    IF t.id IS NOT NULL THEN
        o := o || jsonb_build_object('t', jsonb_build_array(t.debit_account_id, t.credit_account_id, t.amount_fen,
            t.code, t.kind, t.pending_id, t.timeout_at, t.deal_id, t.created_at));
    END IF;
    IF o_details IS NOT NULL THEN
        o := o || jsonb_build_object('d', o_details);
    END IF;
    IF o_refused IS NOT NULL THEN
        o := o || jsonb_build_object('r', o_refused);
    END IF;
    IF o_held <> '[]' THEN
        o := o || jsonb_build_object('h', o_held);
    END IF;
    IF o_alerts <> '[]' THEN
        o := o || jsonb_build_object('a', o_alerts);
    END IF;
    RETURN o;
END
$fn$
"""

DROP = f"DROP FUNCTION IF EXISTS {SIGNATURE}"


def statements(dialect: str, *, drop: bool = False) -> tuple[str, ...]:
    """The statements that create (or drop) the function; none on SQLite, which runs the batch engine."""
    if dialect != "postgresql":
        return ()
    return (DROP,) if drop else (CREATE,)
