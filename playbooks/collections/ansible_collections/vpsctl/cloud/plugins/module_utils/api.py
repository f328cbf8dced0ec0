# -*- coding: utf-8 -*-
"""The vpsctl API as the collection calls it: JSON over HTTP with a bearer token, through
ansible's own ``open_url`` (nothing to install on the controller).  Errors are the API's
problem+json answers, kept whole in ``ApiError.problem``; the token is never part of a message."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url

TERMINAL_JOB = ("succeeded", "failed", "cancelled")
PAGE_SIZE = 100


class ApiError(Exception):
    def __init__(self, message, status=None, problem=None):
        super(ApiError, self).__init__(message)
        self.status = status
        self.problem = problem


def settings_from(url, token):
    """The API's address and token: as given, else $VPSCTL_API_URL and $VPSCTL_TOKEN."""
    url = url or os.environ.get("VPSCTL_API_URL")
    token = token or os.environ.get("VPSCTL_TOKEN")
    if not url:
        raise ApiError("api_url is not set (nor VPSCTL_API_URL)")
    if not token:
        raise ApiError("api_token is not set (nor VPSCTL_TOKEN)")
    return url.rstrip("/"), token


class Client:
    def __init__(self, url, token, validate_certs=True, timeout=30):
        self.url, self.token = settings_from(url, token)
        self.validate_certs = validate_certs
        self.timeout = timeout

    def call(self, method, path, query=None, body=None):
        url = self.url + path
        if query:
            url += "?" + urlencode(query, doseq=True)
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            response = open_url(url, method=method, data=data, headers=headers, validate_certs=self.validate_certs,
                                timeout=self.timeout, follow_redirects="none")
            text = response.read()
        except HTTPError as error:
            raw = error.read() if hasattr(error, "read") else b""
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"detail": raw.decode("utf-8", "replace")[:500]}
            if not isinstance(problem, dict):
                problem = {"detail": problem}
            detail = problem.get("detail") or problem.get("title") or error.reason
            raise ApiError("%s %s: %s %s" % (method, path, error.code, detail), error.code, problem)
        except URLError as error:
            raise ApiError("%s %s: %s" % (method, path, error.reason))
        return json.loads(text) if text else None

    # --- VPS ---------------------------------------------------------------------------------

    def list_vps(self, page_size=PAGE_SIZE, **filters):
        """Every VPS the caller sees (a customer: theirs), a page at a time (``next`` cursor)."""
        query = dict((k, v) for k, v in filters.items() if v is not None)
        query["limit"] = page_size
        while True:
            page = self.call("GET", "/v1/vps", query)
            for item in page["items"]:
                yield item
            if not page.get("next"):
                return
            query["cursor"] = page["next"]

    def find_by_name(self, name, customer=None):
        """The caller's VPS named ``name`` (not deleted); staff narrow it with ``customer``."""
        return [v for v in self.list_vps(name=name) if v["name"] == name and (customer is None or
                                                                                v["customer"] == customer)]

    def get_vps(self, vps_id):
        return self.call("GET", "/v1/vps/" + quote(vps_id, safe=""))

    def order(self, order):
        """Order a VPS from a plan (``POST /v1/orders``, R8.1-setup-fee): the answer holds the
        ``order``, ``subscription``, first ``invoice``, ``vps`` and its create ``job``."""
        return self.call("POST", "/v1/orders", body=order)

    def create_unbilled(self, spec):
        """Staff: a VPS without an order, not billed (``POST /v1/vps`` with ``customer`` and
        ``reason``; a customer's token is refused, 403).  The answer holds ``vps`` and ``job``."""
        return self.call("POST", "/v1/vps", body=spec)

    def get_plan(self, plan):
        """``GET /v1/plans/{code or id}`` (a plan not on offer: ``ApiError`` 404)."""
        return self.call("GET", "/v1/plans/" + quote(plan, safe=""))

    def act(self, vps_id, operation, body=None):
        """``POST /v1/vps/{id}/{operation}`` (start, stop, suspend, resume): its job."""
        answer = self.call("POST", "/v1/vps/%s/%s" % (quote(vps_id, safe=""), operation), body=body or {})
        return answer["job"]

    def delete_vps(self, vps_id):
        answer = self.call("DELETE", "/v1/vps/" + quote(vps_id, safe=""), {"confirm_data_loss": "true"})
        return answer["job"]

    def wait_job(self, job_id, timeout, interval=1.0):
        deadline = time.time() + timeout
        while True:
            job = self.call("GET", "/v1/jobs/" + quote(job_id, safe=""))
            if job["status"] in TERMINAL_JOB:
                return job
            if time.time() > deadline:
                raise ApiError("job %s (%s) not finished after %s s: %s" % (job_id, job["kind"], timeout,
                                                                            job["status"]))
            time.sleep(interval)


def host_key_fingerprints(vps):
    return [key["fingerprint"] for key in vps.get("ssh_host_keys", [])]


def known_hosts_lines(vps):
    """``known_hosts`` lines for the VPS: each of its addresses with each public host key the API
    generated for it (before it first booted: nothing learnt on first use)."""
    lines = []
    for address in vps.get("addresses", []):
        for key in vps.get("ssh_host_keys", []):
            public = " ".join(key["public_key"].split()[:2])
            lines.append("%s %s" % (address, public))
    return lines
