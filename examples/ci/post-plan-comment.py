#!/usr/bin/env python3
"""Post keelson's markdown plan as ONE merge-request comment, updated in place.

    post-plan-comment.py PLAN.md [--marker NAME] [--provider github|gitlab]

The comment carries a hidden marker (`<!-- keelson-plan:NAME -->`). On each
push the script looks for the comment with that marker and edits it; only
when there is none does it create one. So a merge request has one plan
comment, always the latest, however often it is pushed.

GitHub Actions (`GITHUB_ACTIONS=true`) reads:
    GITHUB_TOKEN       token with `pull-requests: write` (the workflow's own token)
    GITHUB_API_URL     https://api.github.com, or your GitHub Enterprise API
    GITHUB_REPOSITORY  owner/name
    GITHUB_EVENT_PATH  the event payload, for the pull request number
                       (or set KEELSON_PR_NUMBER)
GitLab CI (`GITLAB_CI=true`) reads:
    KEELSON_GITLAB_TOKEN  a project access token with `api` scope, kept in a
                          masked CI/CD variable (the job token cannot write notes)
    CI_API_V4_URL         https://gitlab.example.com/api/v4
    CI_PROJECT_ID, CI_MERGE_REQUEST_IID

Only the Python standard library is used. The token is sent only in the
Authorization (GitHub) or PRIVATE-TOKEN (GitLab) header of requests to the
API URL above, and never printed: error messages are scrubbed of it.
Exit status: 0 posted, 1 failed (the reason on stderr).
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

# GitHub refuses comment bodies over 65,536 characters.
LIMIT = 65536
PER_PAGE = 100


class Failure(Exception):
    """An error to report in one line, without the token."""


class Api:
    """A tiny JSON client that sends the token in one header."""

    def __init__(self, base, header, token, extra_headers=None):
        self.base = base.rstrip("/")
        self.header = header
        self.token = token
        self.extra = extra_headers or {}

    def scrub(self, text):
        return text.replace(self.token, "***") if self.token else text

    def request(self, method, path, body=None):
        """Returns (decoded JSON, response headers)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header(self.header, self.value())
        req.add_header("Accept", self.extra.get("Accept", "application/json"))
        req.add_header("User-Agent", "keelson-plan-comment")
        for k, v in self.extra.items():
            if k != "Accept":
                req.add_header(k, v)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return (json.loads(raw) if raw else None), resp.headers
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            hint = {
                401: "the token was refused: check that it is set and not expired",
                403: "the token may not write comments: GitHub needs `pull-requests: write` "
                "(a pull request from a fork gets a read-only token); GitLab needs a token "
                "with `api` scope",
                404: "not found: check the repository or project id and the merge request number",
            }.get(e.code, "")
            raise Failure(
                self.scrub(f"{method} {path}: HTTP {e.code} {detail.strip()} {hint}".strip())
            ) from None
        except urllib.error.URLError as e:
            raise Failure(self.scrub(f"{method} {self.base}{path}: {e.reason}")) from None

    def value(self):
        return f"Bearer {self.token}" if self.header == "Authorization" else self.token


def env(name, hint):
    value = os.environ.get(name, "").strip()
    if not value:
        raise Failure(f"{name} is not set: {hint}")
    return value


def github_number():
    if os.environ.get("KEELSON_PR_NUMBER"):
        return os.environ["KEELSON_PR_NUMBER"]
    path = env("GITHUB_EVENT_PATH", "run in a GitHub Actions job, or set KEELSON_PR_NUMBER")
    with open(path, encoding="utf-8") as f:
        event = json.load(f)
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    if not number:
        raise Failure("the event is not a pull request: run on `pull_request`, or set KEELSON_PR_NUMBER")
    return str(number)


class GitHub:
    """Issue comments of a pull request (REST API v3)."""

    def __init__(self):
        self.api = Api(
            os.environ.get("GITHUB_API_URL", "https://api.github.com"),
            "Authorization",
            env("GITHUB_TOKEN", "pass `GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` to the step"),
            {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        )
        repo = env("GITHUB_REPOSITORY", "run in a GitHub Actions job")
        self.repo = "/".join(urllib.parse.quote(p, safe="") for p in repo.split("/", 1))
        self.number = github_number()

    def comments(self):
        page = 1
        while True:
            batch, _ = self.api.request(
                "GET",
                f"/repos/{self.repo}/issues/{self.number}/comments?per_page={PER_PAGE}&page={page}",
            )
            yield from batch
            if len(batch) < PER_PAGE:
                return
            page += 1

    def update(self, comment, body):
        self.api.request("PATCH", f"/repos/{self.repo}/issues/comments/{comment['id']}", {"body": body})

    def create(self, body):
        self.api.request("POST", f"/repos/{self.repo}/issues/{self.number}/comments", {"body": body})


class GitLab:
    """Notes of a merge request (REST API v4)."""

    def __init__(self):
        self.api = Api(
            env("CI_API_V4_URL", "run in a GitLab CI job"),
            "PRIVATE-TOKEN",
            env(
                "KEELSON_GITLAB_TOKEN",
                "add a masked CI/CD variable holding a project access token with `api` scope",
            ),
        )
        project = urllib.parse.quote(env("CI_PROJECT_ID", "run in a GitLab CI job"), safe="")
        iid = env("CI_MERGE_REQUEST_IID", "run the job in a merge request pipeline")
        self.base = f"/projects/{project}/merge_requests/{iid}/notes"

    def comments(self):
        page = 1
        while True:
            batch, headers = self.api.request("GET", f"{self.base}?per_page={PER_PAGE}&page={page}")
            yield from batch
            following = headers.get("X-Next-Page", "")
            if not following:
                if len(batch) < PER_PAGE:
                    return
                following = str(page + 1)
            page = int(following)

    def update(self, comment, body):
        self.api.request("PUT", f"{self.base}/{comment['id']}", {"body": body})

    def create(self, body):
        self.api.request("POST", self.base, {"body": body})


def body_of(plan, marker):
    head = f"<!-- {marker} -->\n"
    if len(head) + len(plan) <= LIMIT:
        return head + plan
    # keelson cuts its own markdown (--markdown-limit); this only guards a
    # plan made with a larger limit.
    note = "\n\n> [!WARNING]\n> The plan was cut to fit one comment; the CI job's log has all of it.\n"
    return head + plan[: LIMIT - len(head) - len(note)] + note


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("plan", help="the markdown plan (keelson reconcile --output markdown)")
    p.add_argument("--marker", default="keelson-plan", help="names the comment; one per marker")
    p.add_argument("--provider", choices=["github", "gitlab"], help="default: from the CI's variables")
    args = p.parse_args(argv)
    try:
        provider = args.provider or (
            "github" if os.environ.get("GITHUB_ACTIONS") else "gitlab" if os.environ.get("GITLAB_CI") else None
        )
        if provider is None:
            raise Failure("not in GitHub Actions or GitLab CI: pass --provider github|gitlab")
        with open(args.plan, encoding="utf-8") as f:
            plan = f.read()
        marker = "keelson-plan" if args.marker == "keelson-plan" else f"keelson-plan:{args.marker}"
        body = body_of(plan, marker)
        client = GitHub() if provider == "github" else GitLab()
        tag = f"<!-- {marker} -->"
        mine = next((c for c in client.comments() if (c.get("body") or "").startswith(tag)), None)
        if mine is None:
            client.create(body)
            print(f"posted the plan as a new comment ({len(body)} characters)")
        else:
            client.update(mine, body)
            print(f"updated the plan comment {mine['id']} in place ({len(body)} characters)")
        return 0
    except (Failure, OSError) as e:
        print(f"post-plan-comment: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
