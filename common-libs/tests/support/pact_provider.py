"""A small provider for the pact kit's tests, run by uvicorn: one product and a state endpoint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, HTTPException

app = FastAPI()

_PRODUCT_ID = "6f1c2a9e-3b4d-4c5e-8f70-112233445566"


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/_pact/provider-states")
async def provider_state(state: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
    # The values the state made, for the interaction's provider-state generators.
    return {"product_id": _PRODUCT_ID}


@app.get("/products/{product_id}")
async def product(
    product_id: str, authorization: Annotated[str | None, Header()] = None
) -> dict[str, str]:
    if authorization != "Bearer verifier-token":
        raise HTTPException(status_code=401)
    return {"id": product_id, "price": "19.99", "currency": "USD"}
