"""Northwind's recordings store: call audio and the courier's proof-of-delivery exports, in S3.

Filled from the seeded CRM so the three systems agree: every ``call_recordings`` row gets its
audio object at its ``storage_key`` (``recordings/<customer id>/<call>.wav``, keyed by the
customer number a person rarely knows), and every delivered parcel a line in the delivery
partner's daily JSONL export, keyed by the recipient's email and phone. The bucket is versioned,
as a careful company's is, so erasure has to remove old versions too.

    python -m demo.recordings --endpoint http://127.0.0.1:5000 --crm sqlite:///var/demo_crm.db
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import boto3
from sqlalchemy import create_engine, select

from connectors.sql import database_url
from demo.seed import call_recordings, customers, orders, parcels

BUCKET = "northwind-call-recordings"
REGION = "eu-west-2"


def seed_recordings(endpoint_url: str, crm_url: str) -> dict[str, int]:
    """Create (or refill) the bucket; returns how many objects of each kind were written."""
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    engine = create_engine(database_url(crm_url))
    try:
        with engine.connect() as conn:
            calls = conn.execute(
                select(
                    call_recordings.c.storage_key,
                    call_recordings.c.direction,
                    call_recordings.c.agent,
                    call_recordings.c.duration_seconds,
                )
            ).all()
            deliveries = conn.execute(
                select(
                    parcels.c.tracking_number,
                    parcels.c.delivered_at,
                    parcels.c.signed_by,
                    customers.c.email,
                    customers.c.phone,
                )
                .join(orders, orders.c.id == parcels.c.order_id)
                .join(customers, customers.c.id == orders.c.customer_id)
                .where(parcels.c.delivered_at.is_not(None))
                .order_by(parcels.c.id)
            ).all()
    finally:
        engine.dispose()
    for key, direction, agent, seconds in calls:
        # A few seconds of silence stands in for the audio: nothing here is a real voice.
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=b"RIFF" + bytes(60),
            ContentType="audio/wav",
            Metadata={"direction": direction, "agent": agent.split(" ")[1], "duration-seconds": str(seconds)},
        )
    by_day: dict[str, list[str]] = defaultdict(list)
    for tracking, delivered_at, signed_by, email, phone in deliveries:
        day = delivered_at.date().isoformat()
        by_day[day].append(
            json.dumps(
                {
                    "tracking_number": tracking,
                    "delivered_at": delivered_at.isoformat(),
                    "recipient_email": email,
                    "recipient_phone": phone,
                    "signed_by": signed_by,
                    "photo_ref": f"pod/{tracking}.jpg",
                }
            )
        )
    for day, lines in by_day.items():
        s3.put_object(
            Bucket=BUCKET,
            Key=f"pod-exports/{day}.jsonl",
            Body=("\n".join(lines) + "\n").encode(),
            ContentType="application/x-ndjson",
        )
    return {"call_audio": len(calls), "proof_of_delivery": len(by_day)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", required=True, help="the S3 endpoint URL")
    parser.add_argument("--crm", required=True, help="the seeded CRM's database URL")
    args = parser.parse_args(argv)
    print(json.dumps(seed_recordings(args.endpoint, args.crm)))


if __name__ == "__main__":
    main()
