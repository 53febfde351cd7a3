#!/bin/sh
# Starts the image of the Dockerfile beside this script: the data on a
# named volume, the configuration in the process environment (`--env`,
# which preflight counts for `required` keys; no .env file in the image).
set -eu
docker build --tag app:1.0 .
docker volume create app-data
exec docker run --rm --name app --env DOMAIN=example.com --volume app-data:/app/data app:1.0
