# SD UNet Explorer in a container. CPU torch by default; `--build-arg TORCH=cuda` for a CUDA build
# (run it with `docker run --gpus all ...`).
FROM python:3.11-slim
ARG TORCH=cpu
ENV PYTHONUNBUFFERED=1 SDUNET_ROOT=/app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sdunet_core ./sdunet_core
COPY app ./app
COPY templates ./templates
COPY static ./static
RUN if [ "$TORCH" = "cuda" ]; then pip install --no-cache-dir torch; \
    else pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu; fi \
 && pip install --no-cache-dir . && pip install --no-cache-dir --no-deps "open-clip-torch>=2.20"
EXPOSE 8000
CMD ["sdunet-explorer", "serve", "--host", "0.0.0.0", "--port", "8000"]
