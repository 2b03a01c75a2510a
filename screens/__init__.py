"""The front: every page of the panel (views, forms, tables, URL map, template tags). It sits on
top of mail, lists and hosting's services and access helpers and holds no rule of its own."""
