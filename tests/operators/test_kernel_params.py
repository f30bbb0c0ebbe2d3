"""Kernel parameter assembly (operators.md §6.6): exact order and strings."""

from __future__ import annotations

import pytest

from bos_server.operators.kernel_params import KernelParamsError, Rootfs, assemble

ROOTFS = Rootfs("s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/rootfs", "f04af5f34635ae7c507322985e60c00c-131")
PASSTHROUGH = "sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system.my-site-domain:300"


def test_spec_example_sbps_image():
    boot_set = {"kernel_parameters": "ip=dhcp quiet", "rootfs_provider": "sbps",
                "rootfs_provider_passthrough": PASSTHROUGH}
    image = "console=ttyS0,115200 spire_join_token=${SPIRE_JOIN_TOKEN}\n"
    assert assemble(boot_set, image, ROOTFS, "4h") == (
        "console=ttyS0,115200 spire_join_token=${SPIRE_JOIN_TOKEN} ip=dhcp quiet "
        "root=sbps-s3:s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/rootfs:"
        "f04af5f34635ae7c507322985e60c00c-131:sbps:v1:iqn.2023-06.csm.iscsi:_sbps-hsn._tcp.my-system."
        "my-site-domain:300 nmd_data=url=s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/rootfs,"
        "etag=f04af5f34635ae7c507322985e60c00c-131 bos_update_frequency=4h")


@pytest.mark.parametrize("boot_set,image,rootfs,expected", [
    ({}, None, None, "bos_update_frequency=4h"),
    ({"kernel_parameters": "quiet"}, None, None, "quiet bos_update_frequency=4h"),
    ({"rootfs_provider_passthrough": "nfs:server:/export"}, None, None,
     "root=::nfs:server:/export bos_update_frequency=4h"),
    ({"rootfs_provider": "sbps"}, None, ROOTFS,
     f"root=sbps-s3:{ROOTFS.path}:{ROOTFS.etag} nmd_data=url={ROOTFS.path},etag={ROOTFS.etag} bos_update_frequency=4h"),
    ({"rootfs_provider": "sbps"}, None, Rootfs(ROOTFS.path, ""), f"root=sbps-s3:{ROOTFS.path}: "
     f"nmd_data=url={ROOTFS.path} bos_update_frequency=4h"),
    ({"rootfs_provider": "sbps"}, None, Rootfs("", ""), "root=sbps-s3:: bos_update_frequency=4h"),
    ({"rootfs_provider": "sbps"}, None, Rootfs("", "e1"), "root=sbps-s3::e1 nmd_data=etag=e1 bos_update_frequency=4h"),
    ({}, "  a=1\tb   c=3 \n", None, "a=1 b c=3 bos_update_frequency=4h"),
    ({"kernel_parameters": "x  y"}, "a", None, "a x  y bos_update_frequency=4h"),  # boot-set params verbatim
], ids=["nothing", "boot_set_only", "passthrough_without_provider", "sbps", "sbps_no_etag", "sbps_empty_link",
        "sbps_etag_only", "image_words_split", "boot_set_verbatim"])
def test_pieces_in_order(boot_set, image, rootfs, expected):
    assert assemble(boot_set, image, rootfs, "4h") == expected


def test_no_provider_and_no_passthrough_means_no_root():
    assert "root=" not in assemble({"kernel_parameters": "quiet"}, "console=tty0", ROOTFS, "4h")


def test_ttl_is_sent_verbatim():
    assert assemble({}, None, None, "2D").endswith("bos_update_frequency=2D")


def test_unsupported_provider_is_a_setup_error():
    with pytest.raises(KernelParamsError) as info:
        assemble({"rootfs_provider": "cpss3"}, None, ROOTFS, "4h", "compute")
    assert str(info.value).startswith("Unsupported rootfs_provider ('cpss3') specified in boot set")


def test_sbps_without_rootfs_is_a_setup_error():
    with pytest.raises(KernelParamsError):
        assemble({"rootfs_provider": "sbps"}, None, None, "4h")


def test_bos_adds_no_node_specific_parameters():
    text = assemble({"rootfs_provider": "sbps"}, "console=tty0", ROOTFS, "4h")
    for word in ("bos_session_id=", "xname=", "nid=", "bss_referral_token=", "ds="):
        assert not any(w.startswith(word) for w in text.split())
