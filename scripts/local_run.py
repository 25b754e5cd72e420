"""Runs veriff-archiver's main job locally, for real, with no AWS account and no Docker.

Started by scripts/local-run.sh once the release bootstrap and the dev servers are built:
  1. a local S3-compatible server (devkit `local-s3`, s3s-fs, SigV4 checked) on a free port,
  2. the Veriff API fake (devkit `veriff-fake`) with the demo session: several images per
     context, NFC data and a selfie video,
  3. the release `bootstrap` under AWS's Lambda Runtime Interface Emulator (from the
     aws-sam-cli wheel),
then invokes it with files from events/ and prints each HTTP answer, the function's log
lines, the objects stored with their sizes, and the manifest. Every process it starts is
stopped on exit, on error and on Ctrl-C.

With --queue it shows queue mode instead: moto_server serves a local SQS (an archive queue
with a redrive policy to a dead-letter queue); one bootstrap under the emulator is the
webhook (INGEST_MODE=queue: it answers "queued"), a second is the consumer, and this
script plays Lambda's SQS event source mapping: it receives batches, invokes the consumer
with the SQS event, prints the partial batch response and deletes what succeeded.
"""

import argparse
import json
import re
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "local-test-api-key"
SHARED_SECRET = "local-test-shared-secret"
BUCKET = "veriff-archive"
PREFIX = "veriff/"
S3_KEY, S3_SECRET = "local-access-key", "local-secret-key"
DEFAULT_EVENTS = [
    "event-started.json",
    "bad-signature.json",
    "decision-approved.json",
    "decision-approved-base64.json",
    "decision-declined.json",
    "decision-later-attempt.json",
    "fullauto-approved.json",
    "fullauto-declined.json",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_file(path: Path, what: str, proc: subprocess.Popen, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            sys.exit(f"{what} exited early with status {proc.returncode}")
        time.sleep(0.05)
    sys.exit(f"{what} did not start within {timeout}s")


class Processes:
    """Starts child processes and stops them all, whatever happens."""

    def __init__(self):
        self.children = []

    def start(self, args, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self.children.append(proc)
        return proc

    def stop_all(self):
        for proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.children:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def invoke(url: str, event: bytes) -> dict:
    for _ in range(100):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=event, method="POST"), timeout=120) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    sys.exit("the Runtime Interface Emulator never answered")


def print_new_log_lines(log_path: Path, offset: int) -> int:
    data = log_path.read_bytes()[offset:]
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # emulator chatter
        fields = {k: v for k, v in entry.items() if k not in ("timestamp", "level", "message")}
        print(f"      log {entry.get('level', ''):5} {entry.get('message', '')} {json.dumps(fields)}")
    return offset + len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True, type=Path)
    parser.add_argument("--rie", required=True, type=Path)
    parser.add_argument("--devkit-bin", required=True, type=Path, help="folder with local-s3 and veriff-fake")
    parser.add_argument("--video-mib", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the S3 folder for inspection")
    parser.add_argument("--queue", action="store_true", help="show queue mode (needs --moto-server)")
    parser.add_argument("--moto-server", type=Path, help="moto_server executable, for --queue")
    parser.add_argument("events", nargs="*", default=DEFAULT_EVENTS, help="files in events/ to invoke with")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="veriff-archiver-local-"))
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        print(f"==> Starting local S3 (s3s-fs) and the Veriff fake; data in {work}")
        s3 = procs.start([str(args.devkit_bin / "local-s3"), "--root", str(work / "s3"), "--access-key", S3_KEY,
                          "--secret-key", S3_SECRET, "--bucket", BUCKET, "--addr-file", str(work / "s3.addr")],
                         stdout=subprocess.DEVNULL)
        s3_url = wait_for_file(work / "s3.addr", "local-s3", s3)
        fake = procs.start([str(args.devkit_bin / "veriff-fake"), "--api-key", API_KEY, "--secret", SHARED_SECRET,
                            "--video-mib", str(args.video_mib), "--addr-file", str(work / "veriff.addr")],
                           stdout=subprocess.DEVNULL)
        veriff_url = wait_for_file(work / "veriff.addr", "veriff-fake", fake)
        print(f"    S3 endpoint  {s3_url}\n    Veriff fake  {veriff_url}")

        api_port, runtime_port = free_port(), free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "120",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_ENDPOINT_URL_S3": s3_url,
            "VERIFF_API_URL": veriff_url,
            "VERIFF_API_KEY": API_KEY,
            "VERIFF_SHARED_SECRET": SHARED_SECRET,
            "ARCHIVE_BUCKET": BUCKET,
            "ARCHIVE_PREFIX": PREFIX,
            "ARCHIVE_VIDEOS": "true",
        }
        log_path = work / "function.log"
        log = open(log_path, "wb")

        def start_function(extra_env: dict, role: str) -> str:
            api_port, runtime_port = free_port(), free_port()
            procs.start([str(args.rie), "--runtime-interface-emulator-address", f"127.0.0.1:{api_port}",
                         "--runtime-api-address", f"127.0.0.1:{runtime_port}", "--log-level", "error",
                         str(args.bootstrap)], env={**env, **extra_env}, stdout=log, stderr=subprocess.STDOUT)
            print(f"==> bootstrap ({role}) under the Lambda Runtime Interface Emulator on 127.0.0.1:{api_port}")
            return f"http://127.0.0.1:{api_port}/2015-03-31/functions/function/invocations"

        sqs = consumer_url = None
        if args.queue:
            if not args.moto_server:
                parser.error("--queue needs --moto-server")
            moto_port = free_port()
            moto = procs.start([str(args.moto_server), "-H", "127.0.0.1", "-p", str(moto_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            moto_url = f"http://127.0.0.1:{moto_port}"
            sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1",
                               aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)
            for _ in range(200):
                try:
                    dlq_url = sqs.create_queue(QueueName="archive-dlq")["QueueUrl"]
                    break
                except Exception:  # moto still starting
                    if moto.poll() is not None:
                        raise SystemExit("moto_server exited")
                    time.sleep(0.1)
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queue_url = sqs.create_queue(QueueName="archive", Attributes={
                "VisibilityTimeout": "5",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
            })["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            print(f"    local SQS    {moto_url} (moto_server): {queue_url}, dead-letter queue {dlq_url}")
            url = start_function({"INGEST_MODE": "queue", "ARCHIVE_QUEUE_URL": queue_url,
                                  "AWS_ENDPOINT_URL_SQS": moto_url}, "webhook, INGEST_MODE=queue")
            consumer_url = start_function({}, "queue consumer")
        else:
            url = start_function({}, "webhook")

        offset = 0
        for name in args.events:
            event = (ROOT / "events" / name).read_bytes()
            started = time.monotonic()
            result = invoke(url, event)
            elapsed = (time.monotonic() - started) * 1000
            if "errorType" in result:
                print(f"\n==> {name}: the function failed: {json.dumps(result)}")
                return 1
            print(f"\n==> events/{name} -> HTTP {result['statusCode']} in {elapsed:.0f} ms")
            print(f"    {result['body']}")
            time.sleep(0.1)
            offset = print_new_log_lines(log_path, offset)

        if sqs is not None:
            # Lambda's SQS event source mapping, played by hand: receive, invoke, delete.
            while True:
                messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                               MessageSystemAttributeNames=["All"]).get("Messages", [])
                if not messages:
                    break
                event = {"Records": [{
                    "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
                } for m in messages]}
                started = time.monotonic()
                result = invoke(consumer_url, json.dumps(event).encode())
                elapsed = (time.monotonic() - started) * 1000
                if "errorType" in result:
                    print(f"\n==> the consumer failed: {json.dumps(result)}")
                    return 1
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
                print(f"\n==> SQS batch of {len(messages)} -> consumer in {elapsed:.0f} ms: {json.dumps(result)}")
                time.sleep(0.1)
                offset = print_new_log_lines(log_path, offset)
                for m in messages:
                    if m["MessageId"] not in failed:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
                if failed:
                    print("    failed records come back after the visibility timeout; stopping here")
                    break

        # The seal schedule's Scheduled Event, as EventBridge sends it: the ledger's digest of
        # every manifest written above (docs/evidence-format.md, "The ledger").
        seal_url = consumer_url if sqs is not None else url
        result = invoke(seal_url, (ROOT / "events" / "seal-scheduled.json").read_bytes())
        if "errorType" in result:
            print(f"\n==> the seal failed: {json.dumps(result)}")
            return 1
        print(f"\n==> events/seal-scheduled.json (the seal schedule) -> {json.dumps(result)}")
        time.sleep(0.1)
        offset = print_new_log_lines(log_path, offset)

        client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id=S3_KEY,
                              aws_secret_access_key=S3_SECRET, config=Config(s3={"addressing_style": "path"}))
        objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        print(f"\n==> s3://{BUCKET}/ holds {len(objects)} objects")
        for obj in objects:
            print(f"    {obj['Size']:>10,}  {obj['Key']}")
        manifests = [o["Key"] for o in objects if re.search(r"/manifest(-[0-9TZ]+-[0-9a-f]{16}(-r[0-9]+)?)?\.json$", o["Key"])]
        for key in manifests:
            manifest = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            print(f"\n==> {key}")
            print(json.dumps(manifest, indent=2))
        if args.keep:
            print(f"\nKept {work / 's3' / BUCKET}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 130
    finally:
        procs.stop_all()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
