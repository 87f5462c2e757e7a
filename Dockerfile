# The sse-dist image the Kubernetes jobs run (docs/kubernetes.md): the package, its launch scripts, a non-root
# user. The default targets GPU clusters: a CUDA base with the compiler, since DeepSpeed JIT-compiles its fused
# kernels on first use, and a CUDA build of torch. The CPU variant:
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t sse-dist:0.1.0-cpu .
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
FROM ${BASE_IMAGE}

ARG TORCH=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
# The uid and gid the pods run as (launch.run_as_user).
ARG UID=1000

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# CUDA images have no Python; python:*-slim has its own in /usr/local. libsndfile decodes FLAC for soundfile.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libsndfile1 \
    && if ! python3 -m venv --help > /dev/null 2>&1; then \
         apt-get install -y --no-install-recommends python3 python3-venv python3-dev; \
       fi \
    && rm -rf /var/lib/apt/lists/*

# KubeRay starts Ray through a login shell (bash -lc), whose /etc/profile may reset PATH: put the venv back
# (single quotes on purpose: $PATH expands when the profile runs).
# hadolint ignore=SC2016
RUN python3 -m venv /opt/venv \
    && echo 'export PATH=/opt/venv/bin:$PATH' > /etc/profile.d/sse-dist.sh \
    && (userdel --remove ubuntu 2> /dev/null || true) \
    && groupadd --gid "${UID}" sse \
    && useradd --uid "${UID}" --gid "${UID}" --create-home --shell /bin/bash sse

# torch first, in its own layer: it is the largest and changes least (pinned by the TORCH argument).
# hadolint ignore=DL3013
RUN pip install "${TORCH}" --index-url "${TORCH_INDEX}"

WORKDIR /opt/sse-dist
COPY pyproject.toml README.md ./
COPY sse_dist ./sse_dist
COPY launch ./launch
COPY configs ./configs
# The versions are pyproject.toml's (torch is pinned above).
# hadolint ignore=DL3013
RUN pip install . \
    && chmod 0755 launch/*.sh

USER ${UID}:${UID}
WORKDIR /home/sse
ENTRYPOINT ["/opt/sse-dist/launch/entrypoint.sh"]
CMD ["--help"]
