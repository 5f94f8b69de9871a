"""syncd: keep a compliance platform's users and roles in step with Okta over SCIM 2.0.

The data flows one way, one module per step::

    okta (read)  ->  roles (resolve)  ->  plan (diff against the checkpoint)
                 ->  apply (SCIM writes)  ->  store (record each write)

``engine`` wires the steps together through the small interfaces in ``syncd.interfaces``;
``cli`` and ``scheduler`` drive the engine.
"""

__version__ = "0.1.0"
