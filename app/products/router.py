from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, Cursor, DbDep, Limit
from app.core.schemas import Page
from app.products import service
from app.products.schemas import ProductCreate, ProductOut

router = APIRouter(prefix="/api/v1", tags=["products"])

ActiveFilter = Annotated[bool | None, Query(description="Only active (true) or inactive (false) products")]


@router.post(
    "/products",
    response_model=ProductOut,
    status_code=201,
    summary="Create a loan product (admin)",
    description="Products are **immutable once created** (there is no update endpoint): a loan copies its "
    "product's terms when it is submitted, so a product change could never alter a booked loan — create a new "
    "product instead. Money is a decimal string (or integer) in the currency's minor units; rates are percent. "
    "`min_rate_percent`/`max_rate_percent` default to `annual_rate_percent` (a fixed-rate product). Impossible "
    "combinations answer 422 naming every field involved (e.g. both `min_principal` and `max_principal`).",
)
def create_product(db: DbDep, principal: CurrentUser, body: ProductCreate, response: Response) -> ProductOut:
    product = service.create_product(db, principal, body)
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    return ProductOut.of(product)


@router.get("/products", response_model=Page[ProductOut], summary="List loan products")
def list_products(
    db: DbDep,
    principal: CurrentUser,
    is_active: ActiveFilter = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ProductOut]:
    products, next_cursor = service.list_products(db, principal, is_active, cursor, limit)
    return Page[ProductOut](items=[ProductOut.of(p) for p in products], next_cursor=next_cursor)


@router.get("/products/{product_id}", response_model=ProductOut, summary="One loan product")
def get_product(db: DbDep, principal: CurrentUser, product_id: str) -> ProductOut:
    return ProductOut.of(service.get_product(db, principal, product_id))
