# The bridge and bots image for docker-compose.yml (production).
FROM python:3.11-slim-bookworm
# nginx-light: the router in front of Synapse's workers (`buergerchat synapse`).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    nginx-light \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY bots ./bots
COPY synapse ./synapse
# Editable, so the templates in synapse/ stay next to the code that renders them.
RUN pip install --no-cache-dir -e .
ENV BUERGERCHAT_CONFIG_DIR=/config BUERGERCHAT_DATA_DIR=/data
EXPOSE 8080
CMD ["buergerchat", "run"]
