#!/usr/bin/env python3
"""What the vendor's docs show, done plainly: get a token, list each report's stored items,
pick the saved ones, download each one sequentially with `requests` (which inflates gzip
transparently, as the guide relies on). The benchmark's sequential peer.

usage: vendor_style.py BASE_URL CLIENT_ID SECRET_FILE REPORT_IDS_FILE OUT_DIR
"""
import os
import sys

import requests


def main() -> None:
    base, client_id, secret_file, reports_file, out_dir = sys.argv[1:6]
    with open(secret_file) as f:
        secret = f.read().strip()
    api = f"{base}/api/2"
    token = requests.post(
        f"{api}/idp/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    os.makedirs(out_dir, exist_ok=True)
    with open(reports_file) as f:
        report_ids = [line.strip() for line in f if line.strip()]
    for report_id in report_ids:
        items = requests.get(f"{api}/reports/{report_id}/stored", headers=headers).json()["items"]
        for item in items:
            if item["status"] != "saved":
                continue
            body = requests.get(f"{api}/reports/{report_id}/stored/{item['id']}", headers=headers)
            body.raise_for_status()
            with open(os.path.join(out_dir, f"{item['id']}.{item['report_format']}"), "wb") as out:
                out.write(body.content)


if __name__ == "__main__":
    main()
