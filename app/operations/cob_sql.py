"""The set-based SQL of close of business, for PostgreSQL and SQLite. Every statement works on one chunk of
active loans (`insert_seq > :lo AND insert_seq <= :hi`) and is exactly the projection's rule written as SQL
(app/domain/servicing.py): late fees, accrual by the day-count fraction, days past due."""

import re
from dataclasses import dataclass

from app.domain.delinquency import BUCKET_EDGES, PAR_THRESHOLDS
from app.domain.postings import AccountRole
from app.ledger.accounts import DEFAULT_ACCOUNTS

# The set-based steps serve fixed-schedule loans; simple-interest (daily recalculation) loans accrue on each
# day's actual principal and are re-projected one by one (cob.py `_close_daily_loans`), as are loans with
# installment fees (`close_per_loan`: a fee is charged when each period begins, which the set-based steps do
# not model).
# Chunks sharing each range of insert_seq (cob._create_chunks). A literal, not a parameter, equal to the one in
# the index ix_loans_cob_chunk (migration 0017), so the predicate is an index condition with statistics.
CHUNK_STRIDE = 4
IN_RANGE = (
    f"l.status = 'active' AND l.insert_seq > :lo AND l.insert_seq <= :hi AND l.insert_seq % {CHUNK_STRIDE} = :rem"
)
CHUNK = f"{IN_RANGE} AND l.interest_recalculation = 'none' AND NOT l.close_per_loan"
DAILY = f"{IN_RANGE} AND (l.interest_recalculation = 'daily' OR l.close_per_loan)"
OUTSTANDING_PI = "(i.principal - i.paid_principal + i.interest - i.paid_interest)"
# half_up(o * pct_e6 / 10^8) split as o = q·10^8 + r so no product overflows 64 bits (o up to 10^14).
PERCENT_FEE = (
    f"(({OUTSTANDING_PI} / 100000000) * l.late_fee_percent_e6 "
    f"+ (2 * ({OUTSTANDING_PI} % 100000000) * l.late_fee_percent_e6 + 100000000) / 200000000)"
)
FEE = f"(CASE WHEN l.late_fee_amount_minor IS NOT NULL THEN l.late_fee_amount_minor ELSE {PERCENT_FEE} END)"
HAS_FEE_RULE = "(l.late_fee_amount_minor IS NOT NULL OR l.late_fee_percent_e6 IS NOT NULL)"


def on_loans(predicate: str) -> str:
    """A predicate written for alias `l`, for `UPDATE loans … WHERE` directly: `id IN (SELECT …)` would be
    planned as a scan of every loan per chunk, making close of business quadratic in the book size."""
    return re.sub(r"\bl\.", "loans.", predicate)


@dataclass(frozen=True)
class CobSql:
    postgres: bool
    date_param: str = "d"  # the bound parameter holding the business date

    def account(self, role: AccountRole, alias: str = "l") -> str:
        """The loan's account for a role: its own mapping (`loans.accounts`, as the online path reads it), else
        the chart's default — never a code written into the SQL."""
        default = DEFAULT_ACCOUNTS[role]
        mapped = (
            f"({alias}.accounts ->> '{role.value}')"
            if self.postgres
            else f"json_extract({alias}.accounts, '$.{role.value}')"
        )
        return f"COALESCE({mapped}, '{default}')"

    @property
    def d(self) -> str:
        return f"CAST(:{self.date_param} AS DATE)" if self.postgres else f":{self.date_param}"

    def add_days(self, day: str, n: str) -> str:
        return f"({day} + ({n}))" if self.postgres else f"date({day}, '+' || ({n}) || ' days')"

    def days_between(self, later: str, earlier: str) -> str:
        if self.postgres:
            return f"({later} - {earlier})"
        return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"

    # --- late fees ---------------------------------------------------------------------------------------
    def fee_candidates(self) -> str:
        """Loans in the chunk that can owe a new late fee: their oldest unpaid due date is past grace."""
        trigger = self.add_days("l.oldest_unpaid_due_date", "l.late_fee_grace_days + 1")
        return f"{CHUNK} AND {HAS_FEE_RULE} AND l.oldest_unpaid_due_date IS NOT NULL AND {trigger} <= {self.d}"

    def fee_due(self) -> str:
        trigger = self.add_days("i.due_date", "l.late_fee_grace_days + 1")
        return f"i.late_fee_date IS NULL AND {OUTSTANDING_PI} > 0 AND {trigger} <= {self.d}"

    def fee_lines(self) -> str:
        """The day's late-fee lines, one pass: per loan a receivable debit (r.k = 0) and an income credit (1),
        keyed by product (each product's lines are its entry of the day)."""
        fee = f"SUM({FEE})"
        receivable = self.account(AccountRole.penalties_receivable)
        income = self.account(AccountRole.penalty_income)
        return (
            f"SELECT l.product_id AS entry_key, CASE r.k WHEN 0 THEN {receivable} ELSE {income} END AS account_code, "
            "l.id AS loan_id, "
            f"CASE r.k WHEN 0 THEN {fee} ELSE 0 END AS debit, CASE r.k WHEN 0 THEN 0 ELSE {fee} END AS credit "
            "FROM loans l JOIN loan_installments i ON i.loan_id = l.id CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1) r "
            f"WHERE {self.fee_candidates()} AND {self.fee_due()} GROUP BY l.id, l.product_id, r.k"
        )

    def fee_totals(self) -> str:
        """(currency, amount, count) of the day's late fees: amounts of different currencies never add up."""
        return (
            f"SELECT l.currency, COALESCE(SUM({FEE}), 0), COUNT(*) FROM loans l "
            f"JOIN loan_installments i ON i.loan_id = l.id "
            f"WHERE {self.fee_candidates()} AND {self.fee_due()} GROUP BY l.currency"
        )

    def charge_fees_on_loans(self) -> str:
        return (
            "UPDATE loans SET penalties_outstanding = penalties_outstanding + ("
            f"SELECT COALESCE(SUM({FEE}), 0) FROM loans l JOIN loan_installments i ON i.loan_id = l.id "
            f"WHERE l.id = loans.id AND {self.fee_due()}) "
            f"WHERE {on_loans(self.fee_candidates())}"
        )

    def charge_fees_on_installments(self) -> str:
        trigger = self.add_days("i.due_date", "l.late_fee_grace_days + 1")
        return (
            f"UPDATE loan_installments SET penalties = penalties + src.fee, late_fee_date = src.trigger_date "
            f"FROM (SELECT i.loan_id, i.number, {FEE} AS fee, {trigger} AS trigger_date "
            f"FROM loans l JOIN loan_installments i ON i.loan_id = l.id "
            f"WHERE {self.fee_candidates()} AND {self.fee_due()}) src "
            "WHERE loan_installments.loan_id = src.loan_id AND loan_installments.number = src.number"
        )

    # --- accrual -------------------------------------------------------------------------------------------
    def roll_periods(self) -> str:
        """Move loans whose current period ended to the installment whose period contains :d."""
        nxt = "FROM loan_installments i WHERE i.loan_id = loans.id AND i.due_date > {d} ORDER BY i.number LIMIT 1"
        nxt = nxt.format(d=self.d)
        return (
            "UPDATE loans SET "
            f"interest_before_current = (SELECT COALESCE(SUM(i.interest), 0) FROM loan_installments i "
            f"WHERE i.loan_id = loans.id AND i.due_date <= {self.d}), "
            f"current_period_start = (SELECT i.period_start {nxt}), "
            f"current_due_date = (SELECT i.due_date {nxt}), "
            f"current_period_interest = COALESCE((SELECT i.interest {nxt}), 0) "
            f"WHERE {on_loans(CHUNK)} AND loans.current_due_date IS NOT NULL AND loans.current_due_date <= {self.d}"
        )

    def fractions(self, alias: str = "l") -> str:
        """The day's accrual fraction of the loan's current period as `f` (none once no period is current)."""
        return (
            f"LEFT JOIN cob_accrual_fractions f ON f.business_date = {self.d} AND f.day_count = {alias}.day_count "
            f"AND f.period_start = {alias}.current_period_start AND f.due_date = {alias}.current_due_date"
        )

    @staticmethod
    def recognised(alias: str = "l") -> str:
        """Interest recognised through :d: installments already due + half-up share of the current one (needs
        `fractions(alias)` joined: a join, not a scalar subquery, which PostgreSQL would run once per use)."""
        return (
            f"({alias}.interest_before_current + COALESCE((2 * {alias}.current_period_interest * f.numerator "
            "+ f.denominator) / (2 * f.denominator), 0))"
        )

    @staticmethod
    def from_advance(delta: str, alias: str = "l") -> str:
        """The part of a day's accrual that interest received in advance already paid (README "Posting rules")."""
        prepaid = f"{alias}.interest_prepaid"
        least = f"(CASE WHEN {prepaid} < {delta} THEN {prepaid} ELSE {delta} END)"
        return f"(CASE WHEN {delta} > 0 THEN {least} ELSE 0 END)"

    def non_accrual(self, alias: str = "l") -> str:
        """The day's accrual goes to interest in suspense: days past due at the end of :d exceed the product's
        non_accrual_after_days (the projection's rule, servicing `account_accrual`)."""
        limit = f"{alias}.non_accrual_after_days"
        return f"({limit} IS NOT NULL AND {self.dpd(alias)} > {limit})"

    def accrual_lines(self) -> str:
        """The day's accrual lines, one pass over the chunk: up to four lines per loan (receivable, interest
        received in advance, income, suspense), zero ones dropped by the insert; keyed by product. Each loan's
        amounts are computed once (`x`), then dealt out to the four line kinds (PostgreSQL would otherwise expand
        the whole expression in every line kind, debit, credit and filter)."""
        once = " OFFSET 0" if self.postgres else ""
        delta = "x.delta"
        used = self.from_advance(delta, "x")
        receivable = f"({delta} - {used})"
        income = f"(CASE WHEN x.non_accrual THEN 0 ELSE {delta} END)"
        suspended = f"(CASE WHEN x.non_accrual THEN {delta} ELSE 0 END)"
        # (role, debit, credit) per line kind; r.k picks the kind.
        kinds = (
            (
                AccountRole.interest_receivable,
                f"CASE WHEN {receivable} > 0 THEN {receivable} ELSE 0 END",
                f"CASE WHEN {receivable} < 0 THEN -{receivable} ELSE 0 END",
            ),
            (AccountRole.interest_received_in_advance, used, "0"),
            (
                AccountRole.interest_income,
                f"CASE WHEN {income} < 0 THEN -{income} ELSE 0 END",
                f"CASE WHEN {income} > 0 THEN {income} ELSE 0 END",
            ),
            (
                AccountRole.interest_in_suspense,
                f"CASE WHEN {suspended} < 0 THEN -{suspended} ELSE 0 END",
                f"CASE WHEN {suspended} > 0 THEN {suspended} ELSE 0 END",
            ),
        )
        per_loan = (
            f"SELECT l.product_id AS entry_key, l.id AS loan_id, l.interest_prepaid, "
            f"({self.recognised()} - l.interest_recognized) AS delta, "
            f"CASE WHEN {self.non_accrual()} THEN 1 ELSE 0 END = 1 AS non_accrual, "
            + ", ".join(f"{self.account(kind[0])} AS a{k}" for k, kind in enumerate(kinds))
            + f" FROM loans l {self.fractions()} WHERE {CHUNK}{once}"
        )
        amounts = ", ".join(f"{kind[1]} AS d{k}, {kind[2]} AS c{k}" for k, kind in enumerate(kinds))

        def pick(column: str) -> str:
            return "CASE r.k " + " ".join(f"WHEN {k} THEN y.{column}{k}" for k in range(len(kinds))) + " END"

        ks = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(len(kinds)))
        return (
            f"SELECT y.entry_key, {pick('a')} AS account_code, y.loan_id, {pick('d')} AS debit, "
            f"{pick('c')} AS credit "
            f"FROM (SELECT x.*, {amounts} FROM ({per_loan}) x{once}) y CROSS JOIN ({ks}) r"
        )

    def accrual_total(self) -> str:
        """(currency, amount) of the day's accrual."""
        return (
            f"SELECT l.currency, COALESCE(SUM({self.recognised()} - l.interest_recognized), 0) FROM loans l "
            f"{self.fractions()} WHERE {CHUNK} GROUP BY l.currency"
        )

    def accrue_and_age(self) -> str:
        """One rewrite of each loan row a day: the accrual (interest recognised through :d, what interest
        received in advance covered, suspense) and the ageing (days past due, bucket, accrual status, past
        maturity, snapshot date). The share is computed once per loan in `a`, joined back by id within the
        chunk (the chunk predicate on both sides keeps it a range scan, never a scan of every loan)."""
        delta = "(a.recognised - loans.interest_recognized)"
        used = self.from_advance(delta, "loans")
        dpd = self.dpd("loans")
        # SET expressions all read the row as it was before the UPDATE (SQL standard; SQLite and PostgreSQL).
        return (
            f"UPDATE loans SET interest_outstanding = loans.interest_outstanding + {delta} - {used}, "
            f"interest_prepaid = loans.interest_prepaid - {used}, "
            f"interest_suspended = loans.interest_suspended "
            f"+ CASE WHEN {self.non_accrual('loans')} THEN {delta} ELSE 0 END, "
            "interest_recognized = a.recognised, "
            f"days_past_due = {dpd}, delinquency_bucket = {self.bucket(dpd)}, "
            f"accrual_status = CASE WHEN {self.non_accrual('loans')} THEN 'non_accrual' ELSE 'accruing' END, "
            f"past_maturity = CASE WHEN loans.maturity_date < {self.d} THEN {self.true} ELSE {self.false} END, "
            f"snapshot_date = {self.d}, version = loans.version + 1 "
            f"FROM (SELECT l.id, {self.recognised()} AS recognised FROM loans l {self.fractions()} WHERE {CHUNK}) a "
            f"WHERE loans.id = a.id AND {on_loans(CHUNK)}"
        )

    # --- ageing --------------------------------------------------------------------------------------------
    def dpd(self, alias: str) -> str:
        return self.dpd_since(f"{alias}.oldest_unpaid_due_date")

    def dpd_since(self, oldest: str) -> str:
        """Days past due at :d from an oldest-unpaid-due-date expression (domain `days_past_due`)."""
        return (
            f"(CASE WHEN {oldest} IS NOT NULL AND {oldest} < {self.d} "
            f"THEN {self.days_between(self.d, oldest)} ELSE 0 END)"
        )

    @staticmethod
    def bucket(dpd: str) -> str:
        """The bucket of a DPD expression, generated from the domain's BUCKET_EDGES."""
        edges = [(int(highest), name) for highest, name in BUCKET_EDGES if highest is not None]
        cases = " ".join(f"WHEN {dpd} <= {highest} THEN '{name}'" for highest, name in edges)
        return f"(CASE {cases} ELSE '{BUCKET_EDGES[-1][1]}' END)"

    @staticmethod
    def par_sums(dpd: str, principal: str) -> str:
        """One SUM per PAR threshold (domain PAR_THRESHOLDS: DPD > N), shared by current and past reports."""
        return ", ".join(
            f"COALESCE(SUM(CASE WHEN {dpd} > {int(n)} THEN {principal} ELSE 0 END), 0)" for n in PAR_THRESHOLDS
        )

    def record_bucket_changes(self) -> str:
        new = self.bucket(self.dpd("l"))
        return (
            "INSERT INTO loan_delinquency_history (loan_id, on_date, from_bucket, to_bucket, overdue_since, "
            f"created_at) SELECT l.id, {self.d}, l.delinquency_bucket, {new}, l.oldest_unpaid_due_date, :now "
            "FROM loans l "
            f"WHERE {CHUNK} AND l.delinquency_bucket <> {new}"
        )

    def next_due(self) -> str:
        outstanding = (
            "(i.principal + i.interest + i.fees + i.penalties - i.paid_principal - i.paid_interest "
            "- i.paid_fees - i.paid_penalties)"
        )
        upcoming = (
            f"FROM loan_installments i WHERE i.loan_id = loans.id AND i.due_date >= {self.d} AND {outstanding} > 0"
        )
        arrears = (
            f"(SELECT COALESCE(SUM({outstanding}), 0) FROM loan_installments i "
            f"WHERE i.loan_id = loans.id AND i.due_date < {self.d})"
        )
        first_upcoming = f"(SELECT MIN(i.due_date) {upcoming})"
        upcoming_amount = f"(SELECT {outstanding} {upcoming} ORDER BY i.due_date, i.number LIMIT 1)"
        return (
            f"UPDATE loans SET next_due_date = COALESCE({first_upcoming}, oldest_unpaid_due_date), "
            f"next_due_amount = COALESCE({upcoming_amount}, 0) + {arrears} "
            f"WHERE {on_loans(CHUNK)} AND ((loans.next_due_date IS NOT NULL AND loans.next_due_date < {self.d}) "
            f"OR (loans.oldest_unpaid_due_date IS NOT NULL AND loans.oldest_unpaid_due_date < {self.d}))"
        )

    @property
    def true(self) -> str:
        return "TRUE" if self.postgres else "1"

    @property
    def false(self) -> str:
        return "FALSE" if self.postgres else "0"

    def chunk_shape(self) -> str:
        """Products (with currency) and current periods of the chunk's set-based loans, in one pass."""
        return (
            "SELECT DISTINCT l.product_id, l.currency, l.day_count, l.current_period_start, l.current_due_date "
            f"FROM loans l WHERE {CHUNK}"
        )

    def lock_and_count(self) -> str:
        """(set-based loans, daily loans) of the chunk, locking every loan of its range first on PostgreSQL: a
        payment holding a loan's row lock finishes first (and its catch-up accrual is seen), a later one waits for
        this chunk — never both book the same day. One pass, no ids sent back."""
        lock = " FOR NO KEY UPDATE" if self.postgres else ""
        return (
            f"SELECT COUNT(*) FILTER (WHERE {CHUNK}), COUNT(*) FILTER (WHERE {DAILY}) FROM (SELECT l.id, l.insert_seq, "
            f"l.status, l.interest_recalculation, l.close_per_loan FROM loans l WHERE {IN_RANGE} "
            f"ORDER BY l.insert_seq{lock}) l"
        )

    def daily_in_chunk(self) -> str:
        return f"SELECT l.id FROM loans l WHERE {DAILY} ORDER BY l.id"
