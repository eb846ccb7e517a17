# SD UNet Explorer in a container. The first stage builds the wheel; the image installs torch and then that wheel,
# which carries the page itself: no source folder is copied into the image. CPU torch by default;
# `--build-arg TORCH=cuda` for a CUDA build (run it with `docker run --gpus all ...`).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY sdunet_core ./sdunet_core
COPY templates ./templates
COPY static ./static
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ARG TORCH=cpu
ENV PYTHONUNBUFFERED=1
# torch first, in its own layer: it is the large one, and it does not change when the app does.
RUN if [ "$TORCH" = "cuda" ]; then pip install --no-cache-dir torch; \
    else pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu; fi
COPY --from=wheel /dist /tmp/dist
# The wheel carries the CLIP vocabulary and the twin's weights: nothing else is installed beside it.
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -r /tmp/dist && useradd --create-home explorer
USER explorer
WORKDIR /home/explorer
EXPOSE 8000
CMD ["sdunet-explorer", "serve", "--host", "0.0.0.0", "--port", "8000"]
