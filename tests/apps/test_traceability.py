from apps.traceability import Traceability


def trace(caller):
    return caller(Traceability({"producers": "any of [farm]", "inspectors": "any of [inspector]"}))


def test_farm_to_shelf(caller):
    c = trace(caller)
    c("farm", "register", batch_id="B1", product="tea", origin="Mengding", quantity_kg=500)
    c("farm", "transfer", batch_id="B1", to="wholesaler")
    c("inspector", "inspect", batch_id="B1", result="pass", notes="ok")
    c("wholesaler", "transfer", batch_id="B1", to="shop")
    assert c("shop", "sell", batch_id="B1") == {"custodian": "shop", "status": "sold"}
    events = [(h["event"], h["org"]) for h in c.state.get("batch/B1")["history"]]
    assert events == [("registered", "farm"), ("transferred", "farm"), ("inspected: pass", "inspector"),
                      ("transferred", "wholesaler"), ("sold", "shop")]


def test_only_the_custodian_transfers(caller):
    c = trace(caller)
    c("farm", "register", batch_id="B1", product="tea", origin="Mengding", quantity_kg=500)
    c.refused("wholesaler", "transfer", "wholesaler does not hold batch B1 \\(farm does\\)", batch_id="B1", to="x")
    c.refused("farm", "transfer", "needs another organisation", batch_id="B1", to="farm")


def test_permissions_recalls_and_bad_inputs(caller):
    c = trace(caller)
    c.refused("shop", "register", "shop may not register", batch_id="B1", product="tea", origin="x", quantity_kg=1)
    c.refused("farm", "transfer", "unknown batch B9", batch_id="B9", to="shop")
    c("farm", "register", batch_id="B1", product="tea", origin="x", quantity_kg=1)
    c.refused("farm", "register", "already registered", batch_id="B1", product="tea", origin="x", quantity_kg=1)
    c.refused("farm", "inspect", "farm may not inspect", batch_id="B1", result="pass")
    c.refused("inspector", "inspect", "result must be one of", batch_id="B1", result="meh")
    c("inspector", "inspect", batch_id="B1", result="fail")
    c.refused("farm", "sell", "recalled", batch_id="B1")
