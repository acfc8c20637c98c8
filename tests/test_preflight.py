"""Settings that cannot work are refused before any work, with one line (distill/training/preflight.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import BertConfig, DebertaV2Config, RobertaConfig

from distill import hardware, train
from distill.builders import tiny_student, tiny_teacher
from distill.schema import FUNSD_LABELS
from distill.training import preflight
from tests.test_students import WORDS, tiny_checkpoint

# /proc/cpuinfo flag lines of real machines.
# AMD EPYC 7352 (Zen 2): AVX2, no AVX-512 (where bf16 ran 20x slower than fp32).
EPYC_7352 = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid aperfmperf pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate sme ssbd mba sev ibrs ibpb stibp vmmcall sev_es fsgsbase bmi1 avx2 smep bmi2 cqm rdt_a rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local clzero irperf xsaveerptr rdpru wbnoinvd arat npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif umip rdpid overflow_recov succor smca"  # noqa: E501
# Intel Xeon @ 2.80GHz (Ice Lake server, this project's CI machine): AVX-512 and VNNI, no BF16;
# a bf16 MLP step measured 3x slower than fp32 on it.
XEON_ICELAKE = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm arch_capabilities"  # noqa: E501
# AMD Zen 4 (lscpu "Flags:" line): AVX-512 BF16.
ZEN4 = "Flags:                                   fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology tsc_reliable nonstop_tsc cpuid extd_apicid aperfmperf tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy svm cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves user_shstk avx_vnni avx512_bf16 clzero xsaveerptr rdpru arat npt nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold v_vmsave_vmload avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect"  # noqa: E501
# Intel Sapphire Rapids: AVX-512 BF16 and AMX BF16.
SAPPHIRE_RAPIDS = "Flags:                                   fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology tsc_reliable nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq vmx ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch tpr_shadow ept vpid ept_ad fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves user_shstk avx_vnni avx512_bf16 vnmi avx512vbmi umip waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq la57 rdpid cldemote movdiri movdir64b fsrm serialize tsxldtrk ibt amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities"  # noqa: E501
# AWS Graviton3 (Neoverse V1) and Graviton2 (Neoverse N1), /proc/cpuinfo "Features".
GRAVITON3 = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng"  # noqa: E501
GRAVITON2 = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs"  # noqa: E501


@pytest.mark.parametrize(
    ("cpuinfo", "capability", "native"),
    [
        (EPYC_7352, "AVX2", False),
        (XEON_ICELAKE, "AVX512", False),
        (ZEN4, "AVX512", True),
        (SAPPHIRE_RAPIDS, "AVX512", True),
        (SAPPHIRE_RAPIDS, "AVX2", False),  # ATEN_CPU_CAPABILITY=avx2: PyTorch's kernels skip AVX-512
        (GRAVITON3, "SVE256", True),
        (GRAVITON2, "DEFAULT", False),
    ],
)
def test_native_bf16_is_read_from_real_cpu_flags(cpuinfo: str, capability: str, native: bool) -> None:
    flags = hardware.cpu_flags(cpuinfo)
    assert "fp" in flags or "fpu" in flags, "the flag line parses"
    reason = hardware.bf16_refusal(capability, flags)
    assert (reason is None) == native, reason
    if not native:
        assert capability in reason


def test_this_machines_flags_are_found() -> None:
    """PyTorch's capability and the flags read here are two sources: they must agree on this CPU
    (it compared the capability with the very call that produced it)."""
    capability, flags = hardware.cpu_features()
    if Path("/proc/cpuinfo").is_file():
        assert flags, "/proc/cpuinfo has a flags (x86) or Features (ARM) line"
    needs = {"AVX512": "avx512f", "AVX2": "avx2"}.get(capability.upper().split("_")[0])
    if needs:
        assert needs in flags, f"PyTorch runs {capability} kernels, so the CPU must report {needs}"


@pytest.mark.parametrize(
    ("simulated", "flag", "message"),
    [
        ((("AVX2", hardware.cpu_flags(EPYC_7352))), "--bf16", "no native bfloat16"),
        ((("AVX512", hardware.cpu_flags(ZEN4))), "--fp16", "--fp16 needs a CUDA GPU"),
    ],
)
def test_mixed_precision_a_cpu_would_emulate_is_refused_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    simulated: tuple[str, frozenset[str]],
    flag: str,
    message: str,
) -> None:
    monkeypatch.setattr(preflight, "cpu_features", lambda: simulated)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    assert train.main(["--preset", "quickstart", flag, "--output-dir", "run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "run").exists(), "refused before the run directory was made"


def test_bf16_on_a_native_cpu_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "cpu_features", lambda: ("AVX512", hardware.cpu_flags(SAPPHIRE_RAPIDS)))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    preflight.check_settings(train.parse_config(["--preset", "quickstart", "--bf16"]))


def test_position_limits_come_from_the_model_config() -> None:
    assert hardware.position_limit(BertConfig()) == 512
    assert hardware.position_limit(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert hardware.position_limit(DebertaV2Config(position_biased_input=False)) is None
    # The tiny preset's constant is what its models really hold.
    assert hardware.position_limit(tiny_teacher(WORDS, FUNSD_LABELS).model.config) == hardware.TINY_POSITIONS
    assert hardware.position_limit(tiny_student(WORDS, FUNSD_LABELS).model.config) == hardware.TINY_POSITIONS


@pytest.mark.parametrize("student", ["tiny", "checkpoint"])
def test_max_length_beyond_the_models_positions_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], student: str
) -> None:
    if student == "tiny":
        args, limit = ["--preset", "quickstart", "--max-length", "600"], 512
    else:  # a local BERT with 64 positions, read from its config.json
        path = tiny_checkpoint(tmp_path, max_positions=64)
        args = ["--preset", "quickstart", "--student", str(path), "--stage", "student", "--alpha", "0"]
        args, limit = [*args, "--max-length", "100", "--stride", "16"], 64
    monkeypatch.chdir(tmp_path)
    assert train.main([*args, "--output-dir", "run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"positions for ({limit})" in lines[0], lines
    assert not (tmp_path / "run").exists()
