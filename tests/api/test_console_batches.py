"""The console's payment-batch page: upload a CSV (CSRF-protected), watch progress, see failed rows and download
the results CSV — through the same services as the API."""

from app.events.worker import run_until_idle
from tests.api.helpers_lending import active_loan
from tests.api.test_console import Console, username
from tests.api.test_webhooks import worker_settings
from tests.conftest import fresh_world


def test_upload_watch_and_download_in_the_console() -> None:
    with fresh_world() as (w, db):
        loan = active_loan(w)
        c = Console(w.client)
        assert c.login(username(w, "officer_a")).status_code == 200
        page = c.get("/console/payment-batches")
        assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
        text = f"loan_id,amount,external_id\n{loan['id']},10.00,C-1\nnope,1.00,C-2\n".encode()
        refused = c.client.post("/console/payment-batches", files={"file": ("pay.csv", text, "text/csv")})
        assert refused.status_code == 403
        r = c.post("/console/payment-batches", {}, files={"file": ("pay.csv", text, "text/csv")},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        batch_url = r.headers["location"]
        assert 'http-equiv="refresh"' in c.get(batch_url).text, "refreshes while processing"
        run_until_idle(db, worker_settings(db), timeout=60)
        done = c.get(batch_url)
        assert 'id="batch-status">done<' in done.text and 'id="batch-failed">1<' in done.text
        assert "loan not found" in done.text and 'http-equiv="refresh"' not in done.text
        csv_text = c.get(batch_url + "/results.csv")
        assert csv_text.status_code == 200 and csv_text.text.count("\n") == 3 and "succeeded" in csv_text.text
        bad = c.post("/console/payment-batches", {}, files={"file": ("x.csv", b"amount\n1\n", "text/csv")})
        assert bad.status_code == 422 and "missing column" in bad.text
        assert "pay.csv" in c.get("/console/payment-batches").text
