def test_cast_builds(cast, client_as):
    assert client_as("domain_admin_a").get("/me/").status_code == 200
    assert client_as("customer_a").get("/client/").status_code == 200
