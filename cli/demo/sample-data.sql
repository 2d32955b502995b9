-- Fills the sample schema set-based; sizes come from the settings
-- steep_demo.customers, steep_demo.products, steep_demo.orders and
-- steep_demo.lines_per_order, set by the caller before this runs. The rows
-- satisfy the foreign keys by construction, so their checks are skipped.
SET session_replication_role = replica;

INSERT INTO shop.customers (name, email, country, created_at)
SELECT 'Customer ' || g,
       'customer' || g || '@example.com',
       (ARRAY['DE', 'FR', 'NL', 'US', 'BR', 'JP', 'IN', 'ZA'])[1 + g % 8],
       now() - (g % 1000) * interval '1 day'
FROM generate_series(1, current_setting('steep_demo.customers')::bigint) AS g;

INSERT INTO shop.products (sku, title, price)
SELECT 'SKU-' || lpad(g::text, 8, '0'),
       'Product ' || g || ' ' || md5(g::text),
       ((g * 7919) % 50000) / 100.0 + 1
FROM generate_series(1, current_setting('steep_demo.products')::int) AS g;

INSERT INTO shop.orders (customer_id, ordered_at, status)
SELECT 1 + (g * 104729) % current_setting('steep_demo.customers')::bigint,
       now() - (g % 100000) * interval '1 minute',
       (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + g % 4]
FROM generate_series(1, current_setting('steep_demo.orders')::bigint) AS g;

INSERT INTO shop.order_lines (order_id, line_no, product_id, quantity, unit_price, note)
SELECT o, l,
       1 + (o * 31 + l * 17) % current_setting('steep_demo.products')::int,
       1 + (o + l) % 5,
       ((o * 13 + l) % 20000) / 100.0 + 1,
       'gift wrap ' || md5(o::text || '/' || l::text)
FROM generate_series(1, current_setting('steep_demo.orders')::bigint) AS o,
     generate_series(1, current_setting('steep_demo.lines_per_order')::int) AS l;

INSERT INTO shop."Gift Cards" (code, "balance €", issued_to)
SELECT 'GC-' || g, (g % 200) + 0.5, 1 + g % current_setting('steep_demo.customers')::bigint
FROM generate_series(1, 500) AS g;

SELECT setval('shop.invoice_number', 100000 + current_setting('steep_demo.orders')::bigint);

RESET session_replication_role;

ANALYZE shop.customers, shop.products, shop.orders, shop.order_lines, shop."Gift Cards";
