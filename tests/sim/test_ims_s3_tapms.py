"""IMS (services.md §6), S3 (§7, operators.md §6.5) and TAPMS (§8) contracts."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from bos_sim.inventory import DEFAULT_IMAGE_ID, TENANT_NAME
from bos_sim.s3 import client_for
from bos_sim.stack import Simulator
from tests.sim.helpers import Services, problem_detail

KINDS = ["application/vnd.cray.image.kernel", "application/vnd.cray.image.initrd",
         "application/vnd.cray.image.rootfs.squashfs", "application/vnd.cray.image.parameters.boot"]


def test_s6_1_image_record(svc: Services) -> None:
    image = svc.get("ims", f"/images/{DEFAULT_IMAGE_ID}").json()
    assert image["id"] == DEFAULT_IMAGE_ID and image["arch"] == "x86_64"
    assert image["link"] == {"type": "s3", "path": f"s3://boot-images/{DEFAULT_IMAGE_ID}/manifest.json",
                             "etag": image["link"]["etag"]}
    assert problem_detail(svc.get("ims", "/images/nope"), 404)


def test_s6_2_metadata_patch_is_applied_and_recorded(sim: Simulator, svc: Services) -> None:
    body = {"metadata": {"operation": "set", "key": "sbps-project", "value": "true"}}
    resp = svc.patch("ims", f"/images/{DEFAULT_IMAGE_ID}", json=body)
    assert resp.status_code == 200 and resp.json()["metadata"] == {"sbps-project": "true"}
    assert sim.control("GET", "/ims/patches")["patches"][-1] == {"id": DEFAULT_IMAGE_ID, "patch": body}
    problem_detail(svc.patch("ims", f"/images/{DEFAULT_IMAGE_ID}", json={"metadata": {"operation": "set"}}), 400)
    problem_detail(svc.patch("ims", "/images/nope", json=body), 404)
    svc.patch("ims", f"/images/{DEFAULT_IMAGE_ID}", json={"metadata": {"operation": "remove", "key": "sbps-project"}})
    assert svc.get("ims", f"/images/{DEFAULT_IMAGE_ID}").json()["metadata"] == {}


@pytest.fixture(scope="module")
def s3(sim: Simulator):
    return client_for(sim.urls["s3"])


def test_s7_manifest_lists_the_four_artifacts_with_etags(s3, svc: Services) -> None:
    obj = s3.get_object(Bucket="boot-images", Key=f"{DEFAULT_IMAGE_ID}/manifest.json")
    manifest = json.loads(obj["Body"].read())
    assert manifest["version"] == "1.0"
    assert [a["type"] for a in manifest["artifacts"]] == KINDS
    for artifact in manifest["artifacts"]:
        bucket, key = artifact["link"]["path"][len("s3://"):].split("/", 1)
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ETag"].strip('"') == artifact["link"]["etag"] == artifact["md5"]
    image = svc.get("ims", f"/images/{DEFAULT_IMAGE_ID}").json()
    assert obj["ETag"].strip('"') == image["link"]["etag"]


def test_s7_boot_parameters_object_is_plain_text(s3) -> None:
    body = s3.get_object(Bucket="boot-images", Key=f"{DEFAULT_IMAGE_ID}/boot_parameters")["Body"].read().decode()
    assert "spire_join_token=${SPIRE_JOIN_TOKEN}" in body.split()


def test_s7_missing_key_and_bucket(s3) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.get_object(Bucket="boot-images", Key="nope/manifest.json")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.head_object(Bucket="boot-images", Key="nope/kernel")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.get_object(Bucket="no-such-bucket", Key="k")
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"


def test_s7_requests_are_recorded_and_faults_use_s3_errors(sim: Simulator, s3) -> None:
    sim.add_service_fault("s3", status=503, count=1)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.head_object(Bucket="boot-images", Key=f"{DEFAULT_IMAGE_ID}/kernel")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.head_object(Bucket="boot-images", Key=f"{DEFAULT_IMAGE_ID}/kernel")["ContentLength"] > 0
    methods = [r["method"] for r in sim.requests("s3")]
    assert methods[-2:] == ["HEAD", "HEAD"]


def test_s8_tenant_xnames_and_404_message(svc: Services) -> None:
    tenant = svc.get("tapms", f"/tenants/{TENANT_NAME}").json()
    assert tenant["spec"]["tenantname"] == TENANT_NAME
    xnames = [x for r in tenant["status"]["tenantresources"] for x in r["xnames"]]
    assert len(xnames) == 4
    assert svc.get("tapms", f"/tenants/{tenant['status']['uuid']}").status_code == 200
    missing = svc.get("tapms", "/tenants/nobody")
    assert missing.status_code == 404 and set(missing.json()) == {"message"}
    gateway_form = svc.http.get(svc.urls["tapms"].replace("/v1alpha3", "/apis/tapms/v1alpha3")
                                + f"/tenants/{TENANT_NAME}", timeout=10)
    assert gateway_form.status_code == 200
