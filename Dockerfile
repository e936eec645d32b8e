# GPU image for heldout: PyTorch with CUDA from the official runtime image, heldout on top.
# Build: docker build -t heldout .
# Run:   docker run --gpus all --ipc=host -v "$PWD/runs:/app/runs" -v /data:/data heldout \
#            fit -c configs/demo.yaml --trainer.accelerator gpu
# --ipc=host gives the DataLoader workers and the shared image cache enough shared memory.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY configs ./configs
RUN pip install --no-cache-dir ".[demo]"

ENTRYPOINT ["heldout"]
CMD ["--help"]
