#!/usr/bin/env python3
"""Adds ROWS archived-item rows to a report-archiver ledger, spread over the reports in
REPORT_IDS_FILE: years of history the cloud no longer lists. Rows are written the way
the daemon writes them (same table, same columns); files are not created, since a pass
only looks at the files of the items the cloud lists.

usage: seed_ledger.py LEDGER_DB ACCOUNT REPORT_IDS_FILE ROWS
"""
import sqlite3
import sys
import uuid


def main() -> None:
    ledger, account, ids_file, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    reports = [line.strip() for line in open(ids_file) if line.strip()]
    db = sqlite3.connect(ledger)
    db.execute("PRAGMA journal_mode = WAL")
    batch = []

    def flush() -> None:
        db.executemany(
            "INSERT INTO archived_items (account, report_id, stored_id, report_format, created_at,"
            " listed_size, wire_bytes, stored_bytes, sha256, compressed, path, fetched_at)"
            " VALUES (?, ?, ?, 'csv_v2_0', ?, 20000, 20000, 80000, ?, 0, ?, ?)",
            batch,
        )
        batch.clear()

    for n in range(rows):
        report = reports[n % len(reports)]
        stored = str(uuid.UUID(int=n + 1, version=4))
        day = n // len(reports)
        year, month = 2016 + (day // 365) % 10, 1 + (day // 30) % 12
        created = f"{year:04}-{month:02}-01T00:00:00Z"
        path = f"{account}/{report}/{year:04}/{month:02}/{year:04}{month:02}01T000000Z_{stored}.csv"
        batch.append((account, report, stored, created, f"{n:064x}", path, created))
        if len(batch) == 50_000:
            flush()
    flush()
    db.commit()
    total = db.execute("SELECT COUNT(*) FROM archived_items").fetchone()[0]
    db.close()
    print(f"ledger now holds {total} rows")


if __name__ == "__main__":
    main()
