"""Admin pages of the demo records."""

from __future__ import annotations

from django.contrib import admin

from demo.models import CartItem, Customer, MobileAccount, Order, OrderLine, Policy, Product, ReturnRequest, Store


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "phone", "date_of_birth", "email")
    search_fields = ("name", "phone", "email")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "customer", "status", "placed_on", "delivered_on")
    list_filter = ("status",)
    search_fields = ("number", "customer__name", "customer__phone")
    inlines = (OrderLineInline,)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "category", "price", "discount_percent", "in_stock")
    list_filter = ("category",)
    search_fields = ("sku", "name")


@admin.register(ReturnRequest)
class ReturnRequestAdmin(admin.ModelAdmin):
    list_display = ("reference", "order", "created_at")
    search_fields = ("reference", "order__number")


@admin.register(CartItem)
class CartItemAdmin(admin.ModelAdmin):
    list_display = ("customer", "product", "quantity")
    search_fields = ("customer__name", "customer__phone", "product__sku")


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("title", "audience", "topic", "window_days")
    list_filter = ("audience",)
    search_fields = ("title", "topic", "text")


@admin.register(MobileAccount)
class MobileAccountAdmin(admin.ModelAdmin):
    list_display = ("holder_name", "phone", "account_number", "plan", "balance_due", "status")
    list_filter = ("status", "plan")
    search_fields = ("holder_name", "phone", "account_number")


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("name", "city", "postcode", "opening_hours")
    list_filter = ("city",)
    search_fields = ("name", "city", "postcode")
