"""Called by Lambda with batches of the orders table's stream records (new orders only,
thanks to the mapping's filter): logs each new order's id and total."""

import json


def handler(event, _context):
    for record in event.get("Records", []):
        image = record["dynamodb"].get("NewImage", {})
        order = {key: next(iter(value.values())) for key, value in image.items()}
        print(json.dumps({"new_order": order.get("order_id"), "total": order.get("total")}))
    return {"processed": len(event.get("Records", []))}
